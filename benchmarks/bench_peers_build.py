"""Bulk-build speed of the embedded index before and after a change, measured side by side in one run.

The `lsr` package of `--before` (a commit; default the one before the batch validation) is extracted with
`git archive` into a temporary folder, and each build runs in a fresh interpreter whose `lsr` is either that
copy or this checkout, alternating, `--repeats` times: the same documents (`bench_embedded.py`'s synthetic
generator, `--doc-nnz` 45 per document, seed 0), indexed in calls of `--batch` documents, then `compact()`.

    python benchmarks/bench_peers_build.py --docs 1000000 --out results/bench-peers-build.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["benchmarks/bench_peers_build.py", "benchmarks/bench_embedded.py", "lsr/backends/validate.py",
           "lsr/backends/embedded.py", "lsr/backends/embedded_ids.py", "lsr/backends/base.py", "lsr/sparse.py"]
BEFORE = "d6b87c2"  # the last commit before the batch validation and the grouped build

CHILD = """
import json, sys, time
sys.path.insert(0, {bench!r})
import numpy as np
import lsr
from bench_embedded import sparse_rows, zipf_cdf
from lsr.backends.embedded import EmbeddedIndex
from lsr.sparse import VOCAB_SIZE, SparseBatch
n, nnz, batch = {n}, {nnz}, {batch}
rng = np.random.default_rng(0)
cdf, terms = zipf_cdf(VOCAB_SIZE, 1.0, 10.0, rng)
docs = sparse_rows(n, nnz, cdf, terms, rng).csr
ids = [f"doc-{{i}}" for i in range(n)]
parts = [SparseBatch(docs[lo:lo + batch]) for lo in range(0, n, batch)]
index = EmbeddedIndex()
t0 = time.perf_counter()
for j, part in enumerate(parts):
    report = index.index(ids[j * batch:(j + 1) * batch], part)
index.compact()
s = time.perf_counter() - t0
assert len(index) == n and not report.failed
print(json.dumps({{"build_s": s, "docs_per_s": n / s, "lsr": lsr.__file__}}))
"""


def extract(rev: str, target: Path) -> None:
    data = subprocess.run(["git", "archive", rev, "lsr"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(target, filter="data")


def build(pythonpath: Path, n: int, nnz: int, batch: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = CHILD.format(bench=str(ROOT / "benchmarks"), n=n, nnz=nnz, batch=batch)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=pythonpath, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["lsr"].startswith(str(pythonpath)):
        raise SystemExit(f"the child imported {result['lsr']}, not the copy under {pythonpath}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--doc-nnz", type=int, default=45)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    load = list(os.getloadavg())
    results: dict = {"before_commit": args.before, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp)
        extract(args.before, before)
        for n in args.docs:
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeats):
                for label, path in (("before", before), ("after", ROOT)):
                    r = build(path, n, args.doc_nnz, args.batch)
                    runs[label].append({"build_s": round(r["build_s"], 3), "docs_per_s": round(r["docs_per_s"])})
                    print(f"{n:>9,} docs  {label:<6} {r['build_s']:7.2f}s = {r['docs_per_s']:>9,.0f} docs/s", flush=True)
            best = {label: max(x["docs_per_s"] for x in rs) for label, rs in runs.items()}
            results["sizes"][str(n)] = {"runs": runs, "best_docs_per_s": best,
                                        "speedup": round(best["after"] / best["before"], 2),
                                        "target_400k_met": best["after"] >= 400_000}
            print(f"{n:>9,} docs  best: before {best['before']:,} docs/s, after {best['after']:,} docs/s "
                  f"({best['after'] / best['before']:.1f}x); >= 400,000 docs/s: "
                  f"{'MET' if best['after'] >= 400_000 else 'NOT MET'}", flush=True)
    results["load_after"] = list(os.getloadavg())
    if args.out:
        sys.path.insert(0, str(ROOT))
        from lsr.provenance import benchmark_record

        command = "python benchmarks/bench_peers_build.py " + " ".join(sys.argv[1:])
        record = benchmark_record("bench-peers-build", command, SOURCES, ROOT, results)
        record["machine"]["load_before"] = load
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
