"""The embedded engine (exact and two-phase) beside the learned-sparse engines on PyPI, in one run.

Engines, one thread each (OMP / MKL / torch threads set to 1 before anything loads them), single-query
top-k latency p50 / p99 over the same queries, recall@k against the exact float32 top-k:

- embedded exact: `EmbeddedIndex.search`;
- embedded two-phase: `search(mode="two_phase", method_parameters=...)` over a grid of OpenSearch's
  parameters (prune_type / prune_ratio / expansion_rate) and of `n_postings` (stage 1 over each heavy
  term's n_postings heaviest postings), the forward store and the cut lists built before timing;
- exact dense: a 384-d float32 matmul + argpartition over as many documents (`--dense-queries` queries);
- SEISMIC (`pyseismic-lsr`): `build_from_dataset(n_postings, centroid_fraction 0.1, summary_energy 0.4)`,
  `search(query_cut, heap_factor)` over a grid;
- BMP (`bmp`): block size 32, document weights quantized to u8 (round(w x 255 / max w): BMP's integer
  impacts), `search(alpha, beta=1)` over alpha (1.0 is safe: exact on the quantized weights);
- PISA (`pyterrier-pisa`): integer impacts round(w x 100), `maxscore` (exact on those integers).

The corpus is `bench_embedded.py`'s synthetic generator (Zipf terms over the 30,522-token vocabulary,
log-normal weights): `--doc-nnz` 45 per document, `--query-nnz` 40 expanded and `--noexp-nnz` 7
no-expansion query terms, `--queries` 1,000 of each.

    pip install 'mm-lsr-opensearch[bench]' pyseismic-lsr bmp
    python benchmarks/bench_peers.py --docs 100000 1000000 --out results/bench-peers.json

The JSON record (`lsr.provenance.benchmark_record`: commit, machine and load, digests of the measured
sources) holds every configuration and, per size and query set, each engine's fastest configuration at the
recall targets; `lsr reproduce --check` flags it STALE once a measured source changes.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_embedded import dense_matrix, sparse_rows, zipf_cdf  # noqa: E402

from lsr.backends.embedded import EmbeddedIndex  # noqa: E402
from lsr.backends.embedded_forward import impact_lists  # noqa: E402
from lsr.provenance import benchmark_record  # noqa: E402
from lsr.sparse import VOCAB_SIZE, SparseBatch  # noqa: E402

SOURCES = ["benchmarks/bench_peers.py", "benchmarks/bench_embedded.py", "lsr/backends/embedded.py",
           "lsr/backends/embedded_forward.py", "lsr/backends/base.py", "lsr/backends/validate.py",
           "lsr/topk.py", "lsr/sparse.py"]
TARGETS = {"expanded": (0.98, 0.995), "no-expansion": (0.99,)}
TWO_PHASE_GRID = [  # OpenSearch's pipeline over whole posting lists, then stage 1 over n_postings-cut lists
    *({"prune_type": "max_ratio", "prune_ratio": r, "expansion_rate": e} for r in (0.2, 0.4) for e in (5, 20)),
    *({"prune_type": "top_k", "prune_ratio": 15, "expansion_rate": e} for e in (5, 20)),
    *({"prune_type": t, "prune_ratio": r, "expansion_rate": e, "n_postings": p}
      for p in (1000, 2000, 4000) for t, r in (("none", 0), ("top_k", 10), ("top_k", 20), ("max_ratio", 0.1))
      for e in (5, 10, 20, 40)),
]
SEISMIC_GRID = [(qc, hf) for qc in (3, 5, 7, 10, 15, 20, 30) for hf in (0.7, 0.9, 1.0)]
BMP_ALPHAS = (1.0, 0.8)


def measure(fn: Callable, items: list, warmup: int = 5) -> tuple[float, float, list]:
    """p50 and p99 ms of fn(item) over items (after `warmup` untimed calls) and the results."""
    for x in items[:warmup]:
        fn(x)
    times, out = [], []
    for x in items:
        t0 = time.perf_counter()
        r = fn(x)
        times.append(time.perf_counter() - t0)
        out.append(r)
    t = np.asarray(times) * 1e3
    return float(np.percentile(t, 50)), float(np.percentile(t, 99)), out


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    vals = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth) if t]
    return float(np.mean(vals)) if vals else 1.0


def row_ids(hits) -> list[int]:
    return [int(h.id[4:]) for h in hits]


class Run:
    """One corpus size: the rows measured so far."""

    def __init__(self, n: int, args: argparse.Namespace):
        self.n, self.args, self.rows = n, args, []
        rng = np.random.default_rng(args.seed)
        cdf, terms = zipf_cdf(VOCAB_SIZE, 1.0, 10.0, rng)
        t0 = time.perf_counter()
        self.docs = sparse_rows(n, args.doc_nnz, cdf, terms, rng)
        self.queries = {"expanded": sparse_rows(args.queries, args.query_nnz, cdf, terms, rng),
                        "no-expansion": sparse_rows(args.queries, args.noexp_nnz, cdf, terms, rng)}
        print(f"== {n:,} docs ({self.docs.csr.nnz / n:.1f} nnz/doc), {args.queries} queries per set "
              f"(generated in {time.perf_counter() - t0:.1f}s)", flush=True)
        self.truth: dict[str, list[list[int]]] = {}
        self.exact_p50: dict[str, float] = {}

    def add(self, engine: str, config: dict, queries: str, p50: float, p99: float, rec: float | None, **extra) -> None:
        base = self.exact_p50.get(queries)
        row = {"engine": engine, "config": config, "queries": queries, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
               "recall_at_k": None if rec is None else round(rec, 4),
               "speedup_vs_exact": None if not base else round(base / p50, 2), **extra}
        self.rows.append(row)
        print(f"  {engine:<20} {queries:<12} {json.dumps(config):<70} p50 {p50:8.3f} p99 {p99:8.3f} ms  "
              f"recall {'-' if rec is None else f'{rec:.4f}'}", flush=True)

    # -------------------------------------------------------------------------- embedded
    def embedded(self) -> dict:
        k, out = self.args.k, {}
        index = EmbeddedIndex()
        ids = [f"doc-{i}" for i in range(self.n)]
        t0 = time.perf_counter()
        for lo in range(0, self.n, 10_000):
            index.index(ids[lo : lo + 10_000], SparseBatch(self.docs.csr[lo : lo + 10_000]))
        index.compact()
        out["build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        fwd = index.forward_store()
        out["forward_build_s"] = time.perf_counter() - t0
        out["postings_bytes"] = int(index._offsets.nbytes + index._docs.nbytes + index._vals.nbytes)
        out["forward_bytes"] = int(fwd.nbytes)
        print(f"  embedded build {out['build_s']:.2f}s = {self.n / out['build_s']:,.0f} docs/s; postings "
              f"{out['postings_bytes'] / 2**20:.0f} MiB, forward store {out['forward_bytes'] / 2**20:.0f} MiB "
              f"(built from the postings in {out['forward_build_s']:.1f}s)", flush=True)
        for name, batch in self.queries.items():
            qs = list(batch)
            p50, p99, hits = measure(lambda q: index.search(q, k=k), qs)
            self.truth[name] = [row_ids(h) for h in hits]
            self.exact_p50[name] = p50
            self.add("embedded exact", {}, name, p50, p99, 1.0)
            t0 = time.perf_counter()
            index.search_batch(batch, k=k)
            out[f"search_batch_ms_{name}"] = (time.perf_counter() - t0) / len(qs) * 1e3
            for params in TWO_PHASE_GRID:
                if params.get("n_postings") and f"cut_{params['n_postings']}" not in out:
                    t0 = time.perf_counter()
                    lists = impact_lists(index, params["n_postings"])
                    out[f"cut_{params['n_postings']}"] = {"s": time.perf_counter() - t0, "bytes": lists.nbytes}
                p50, p99, hits = measure(lambda q: index.search(q, k=k, mode="two_phase", method_parameters=params), qs)
                self.add("embedded two-phase", params, name, p50, p99, recall([row_ids(h) for h in hits], self.truth[name]))
        del index, fwd
        gc.collect()
        return out

    # -------------------------------------------------------------------------- peers
    def dense(self) -> None:
        rng = np.random.default_rng(self.args.seed + 1)
        matrix = dense_matrix(self.n, 384, rng)
        q = dense_matrix(self.args.dense_queries, 384, rng)
        k = self.args.k

        def one(v):
            scores = matrix @ v
            top = np.argpartition(-scores, k - 1)[:k]
            return top[np.argsort(-scores[top], kind="stable")]

        for name in self.queries:
            p50, p99, _ = measure(one, list(q))
            self.add("exact dense 384-d", {"queries": len(q)}, name, p50, p99, None)
        del matrix

    def seismic(self) -> dict:
        import seismic

        csr = self.docs.csr
        ds = seismic.SeismicDataset()
        ds.add_documents_by_id([f"doc-{i}" for i in range(self.n)], csr.indices.astype(np.int64),
                               csr.data.astype(np.float32), csr.indptr.astype(np.int64))
        t0 = time.perf_counter()
        index = seismic.SeismicIndex.build_from_dataset(ds, n_postings=self.args.seismic_postings, centroid_fraction=0.1,
                                                        summary_energy=0.4)
        build_s = time.perf_counter() - t0
        del ds
        kind = seismic.get_seismic_string()
        for name, batch in self.queries.items():
            qs = [(np.array([str(t) for t in v.ids], dtype=kind), v.weights.astype(np.float32)) for v in batch]
            for qc, hf in SEISMIC_GRID:
                if name == "no-expansion" and qc > self.args.noexp_nnz + 3:
                    continue
                p50, p99, res = measure(lambda q: index.search("q", q[0], q[1], self.args.k, qc, hf), qs)
                found = [[int(d[4:]) for _, _, d in r] for r in res]
                self.add("SEISMIC", {"n_postings": self.args.seismic_postings, "query_cut": qc, "heap_factor": hf},
                         name, p50, p99, recall(found, self.truth[name]))
        del index
        gc.collect()
        return {"build_s": build_s}

    def bmp(self, work: Path) -> dict:
        import bmp

        csr = self.docs.csr
        scale = 255.0 / float(csr.data.max())
        path = str(work / f"bmp-{self.n}.bmp")
        t0 = time.perf_counter()
        indexer = bmp.Indexer(path, 32, False)
        names = np.array([str(t) for t in range(VOCAB_SIZE)], dtype=object)
        weights = np.maximum(np.rint(csr.data * scale), 1).astype(np.int64)
        for i in range(self.n):
            s, e = csr.indptr[i], csr.indptr[i + 1]
            indexer.add_document(f"doc-{i}", dict(zip(names[csr.indices[s:e]].tolist(), weights[s:e].tolist())))
        indexer.finish()
        build_s = time.perf_counter() - t0
        searcher = bmp.Searcher(path)
        for name, batch in self.queries.items():
            qs = [dict(zip(names[v.ids].tolist(), v.weights.astype(np.float64).tolist())) for v in batch]
            for alpha in BMP_ALPHAS:
                p50, p99, res = measure(lambda q: searcher.search(q, self.args.k, alpha, 1.0), qs)
                found = [[int(d[4:]) for d in r[0]] for r in res]
                self.add("BMP", {"bsize": 32, "alpha": alpha, "beta": 1.0}, name, p50, p99, recall(found, self.truth[name]))
        del searcher
        return {"build_s": build_s, "doc_scale": scale}

    def pisa(self, work: Path) -> dict:
        from bench_pisa import pisa_one, quiet
        from pyterrier_pisa import PisaIndex

        csr = self.docs.csr
        names = np.array([str(t) for t in range(VOCAB_SIZE)], dtype=object)
        impacts = np.maximum(np.rint(csr.data * 100), 1).astype(np.int64)

        def docs():
            for i in range(self.n):
                s, e = csr.indptr[i], csr.indptr[i + 1]
                yield {"docno": f"doc-{i}", "toks": dict(zip(names[csr.indices[s:e]].tolist(), impacts[s:e].tolist()))}

        path = work / f"pisa-{self.n}"
        t0 = time.perf_counter()
        with quiet(work / "pisa.log"):
            pisa = PisaIndex(str(path), stemmer="none", stops="none", threads=1)
            pisa.toks_indexer(scale=1.0).index(docs())
            retr = pisa.quantized(num_results=self.args.k, toks_scale=1.0, query_algorithm="maxscore", threads=1)
        build_s = time.perf_counter() - t0
        k = self.args.k
        for name, batch in self.queries.items():
            qs = [dict(zip(names[v.ids].tolist(), np.rint(v.weights * 100).astype(np.float64).tolist())) for v in batch]

            def one(q):
                out = (np.zeros(k, np.int32), np.zeros(k, object), np.zeros(k, np.int32), np.zeros(k, np.float32))
                pisa_one(retr, q, k, out)
                return [int(d[4:]) for d in out[1] if d]

            p50, p99, found = measure(one, qs)
            self.add("PISA maxscore", {"impacts": "round(w x 100)"}, name, p50, p99, recall(found, self.truth[name]))
        return {"build_s": build_s}


def best_at(rows: list[dict], engine: str, queries: str, target: float) -> dict | None:
    """The fastest configuration of `engine` on `queries` reaching recall >= target."""
    ok = [r for r in rows if r["engine"] == engine and r["queries"] == queries and (r["recall_at_k"] or 0) >= target]
    return min(ok, key=lambda r: r["p50_ms"]) if ok else None


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for queries, targets in TARGETS.items():
        for target in targets:
            cell = {}
            for engine in ("embedded two-phase", "SEISMIC", "BMP", "PISA maxscore", "embedded exact"):
                best = best_at(rows, engine, queries, target)
                cell[engine] = best
            two, sei = cell["embedded two-phase"], cell["SEISMIC"]
            ratio = round(two["p50_ms"] / sei["p50_ms"], 3) if two and sei else None
            limit = 1.2 if queries == "no-expansion" else 1.0
            out[f"{queries}-{round(target * 1000):04d}"] = {"best": cell, "two_phase_over_seismic_p50": ratio,
                                          "target": f"two-phase p50 <= {limit} x SEISMIC's",
                                          "met": None if ratio is None else ratio <= limit}
    return out


def table(rows: list[dict], summary: dict) -> list[dict]:
    """The rows the docs show: exact rows, dense, and each engine's fastest configuration at each target."""
    keep, seen = [], set()
    for r in rows:
        if r["engine"] in ("embedded exact", "exact dense 384-d"):
            keep.append(r)
    for key, cell in summary.items():
        for engine, best in cell["best"].items():
            if best is not None and engine != "embedded exact":
                tag = (engine, best["queries"], json.dumps(best["config"], sort_keys=True))
                if tag not in seen:
                    seen.add(tag)
                    keep.append({**best, "chosen_for": key})
    order = {"expanded": 0, "no-expansion": 1}
    return sorted(keep, key=lambda r: (order[r["queries"]], -(r["recall_at_k"] or 2), r["p50_ms"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dense-queries", type=int, default=100)
    parser.add_argument("--doc-nnz", type=int, default=45)
    parser.add_argument("--query-nnz", type=int, default=40)
    parser.add_argument("--noexp-nnz", type=int, default=7)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seismic-postings", type=int, default=1000)
    parser.add_argument("--engines", default="dense,seismic,bmp,pisa", help="peers to run beside the embedded engine")
    parser.add_argument("--out", default=None, help="write the JSON record here (e.g. results/bench-peers.json)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    engines = set(args.engines.split(",")) - {""}
    command = "python benchmarks/bench_peers.py " + " ".join(sys.argv[1:])
    results: dict = {}
    load_before = os.getloadavg()
    for n in args.docs:
        run = Run(n, args)
        work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
        info = {"load_before": list(os.getloadavg()), "embedded": run.embedded()}
        try:
            if "dense" in engines:
                run.dense()
            if "seismic" in engines:
                info["seismic"] = run.seismic()
            if "bmp" in engines:
                info["bmp"] = run.bmp(work)
            if "pisa" in engines:
                info["pisa"] = run.pisa(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        info["load_after"] = list(os.getloadavg())
        summary = summarise(run.rows)
        for key, cell in summary.items():
            print(f"  {key}: two-phase / SEISMIC p50 = {cell['two_phase_over_seismic_p50']} -> "
                  f"{'MET' if cell['met'] else 'NOT MET'} ({cell['target']})", flush=True)
        results[str(n)] = {"info": info, "summary": summary, "table": table(run.rows, summary), "rows": run.rows}
        del run
        gc.collect()
    if args.out:
        record = benchmark_record("bench-peers", command, SOURCES, ROOT, results)
        record["machine"]["load_before"] = list(load_before)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
