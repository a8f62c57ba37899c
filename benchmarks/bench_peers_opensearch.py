"""OpenSearch's sparse search (exact, two-phase, sparse ANN) beside the embedded engine, in one run.

The same corpus, queries, recall and timing as `bench_peers.py` (its `Run`: `bench_embedded.py`'s synthetic
generator, 45 non-zeros per document, 1,000 expanded queries of 40 terms and 1,000 no-expansion queries of
7 terms; recall@10 against the embedded engine's exact float32 top 10), with OpenSearch over HTTP:

- OpenSearch exact: a ``rank_features`` index searched with ``neural_sparse`` (`lsr.open_index(
  "opensearch://HOST:PORT/NAME", create=True)`, `search(q, k)`); rank_features keeps 9 significant bits of
  each document weight, so its recall against float32 is a little under 1;
- OpenSearch two-phase: the same index with the two-phase search pipeline sent with each request
  (`search(q, k, mode="two_phase", method_parameters=...)`, what `Retrieval("two_phase")` sends) over
  OpenSearch's parameters (prune_type / prune_ratio / expansion_rate);
- OpenSearch sparse ANN: a ``sparse_vector`` index with the SEISMIC method (``?kind=seismic``; n_postings
  as `bench_peers.py`'s SEISMIC, cluster_ratio 0.1, summary_prune_ratio 0.4, the quantization ceilings set
  to the corpus' largest weights), force-merged to one segment (segments under ``approximate_threshold``
  are searched exactly), searched with `search(q, k, mode="ann", method_parameters={top_n, heap_factor})`.

Every OpenSearch row is one client thread issuing one request at a time through opensearch-py, so its
p50 / p99 include the HTTP round trip and the JSON (de)serialisation; the "HTTP floor" row times an empty
request (``match_none``, size 0) on the same connection, the part of every OpenSearch row that is not search.
The embedded rows are in-process calls. The node is one JVM (its heap as started) on the same machine.

Opt-in (it needs a running node; `bench_peers.py` itself stays offline). Run at 100k documents: the record
keeps the load rates and the seismic force-merge time; 1M documents (two indexes, one 1 GiB-heap node
shared with the tests) has not been run.

    python -m lsr.cli opensearch start
    python benchmarks/bench_peers_opensearch.py --opensearch http://127.0.0.1:9200 --docs 100000 \\
        --out results/bench-peers-opensearch-100k.json

The indexes it creates (``bench-peers-os-exact-N``, ``bench-peers-os-seismic-N``) are deleted at the end
unless ``--keep``. The JSON record is `bench_peers.py`'s (`lsr.provenance.benchmark_record`): per size,
every row, each engine's fastest row at the recall targets, and the load before and after.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_peers import TARGETS, Run, best_at, measure, recall  # noqa: E402

from lsr.provenance import benchmark_record  # noqa: E402
from lsr.sparse import SparseBatch  # noqa: E402

SOURCES = ["benchmarks/bench_peers_opensearch.py", "benchmarks/bench_peers.py", "benchmarks/bench_embedded.py",
           "lsr/backends/embedded.py", "lsr/backends/embedded_forward.py", "lsr/backends/remote.py",
           "lsr/backends/opensearch/index.py", "lsr/backends/opensearch/searching.py",
           "lsr/backends/opensearch/query.py", "lsr/backends/opensearch/client.py", "mappings/sparse_rank_features.json",
           "mappings/sparse_seismic.json", "pipelines/two_phase.json"]
VIA = "HTTP, 1 client thread"
EXACT, TWO_PHASE, ANN = (f"OpenSearch exact ({VIA})", f"OpenSearch two-phase ({VIA})", f"OpenSearch sparse ANN ({VIA})")
FLOOR = f"OpenSearch HTTP floor ({VIA})"
TWO_PHASE_GRID = [{"prune_type": "max_ratio", "prune_ratio": r, "expansion_rate": e} for r in (0.2, 0.4) for e in (5, 20)] + \
                 [{"prune_type": "top_k", "prune_ratio": 15, "expansion_rate": e} for e in (5, 20)]
ANN_GRID = [(top_n, hf) for top_n in (5, 10, 15, 20, 30) for hf in (0.9, 1.0)]
ENGINES = ("embedded two-phase", TWO_PHASE, ANN, EXACT, "embedded exact")


def hit_ids(hits) -> list[int]:
    return [int(h.id[4:]) for h in hits]


def load(index, docs: SparseBatch, n: int) -> float:
    ids = [f"doc-{i}" for i in range(n)]
    t0 = time.perf_counter()
    with index.loading():
        for lo in range(0, n, 5_000):
            report = index.index(ids[lo:lo + 5_000], SparseBatch(docs.csr[lo:lo + 5_000]))
            if report.failed:
                raise RuntimeError(f"{len(report.failed)} documents failed, e.g. {next(iter(report.failed.items()))}")
    index.refresh()
    return time.perf_counter() - t0


def merge(index) -> float:
    t0 = time.perf_counter()
    index.client.indices.forcemerge(index=index.index_name, max_num_segments=1, request_timeout=3600)
    index.refresh()
    return time.perf_counter() - t0


def opensearch(run: Run, url: str, keep: bool) -> dict:
    """Build both OpenSearch indexes over run.docs, add their rows to `run`; returns the build info."""
    import lsr

    args, k, n, info = run.args, run.args.k, run.n, {}
    netloc = urlparse(url).netloc
    exact = lsr.open_index(f"opensearch://{netloc}/bench-peers-os-exact-{n}", overwrite=True)
    seismic = lsr.open_index(f"opensearch://{netloc}/bench-peers-os-seismic-{n}?kind=seismic", overwrite=True)
    client = exact.client
    info["version"] = client.info()["version"]["number"]
    try:
        info["exact_load_s"] = load(exact, run.docs, n)
        info["exact_merge_s"] = merge(exact)
        print(f"  OpenSearch rank_features: {n / info['exact_load_s']:,.0f} docs/s, force-merge "
              f"{info['exact_merge_s']:.1f}s", flush=True)
        weights = {"doc": float(run.docs.csr.data.max()),
                   "query": max(float(b.csr.data.max()) for b in run.queries.values())}
        params = {"n_postings": args.seismic_postings, "cluster_ratio": 0.1, "summary_prune_ratio": 0.4,
                  "quantization_ceiling_ingest": math.ceil(weights["doc"]),
                  "quantization_ceiling_search": math.ceil(weights["query"])}
        seismic.create(overwrite=True, method_parameters=params)
        info["seismic_method"] = params
        info["seismic_load_s"] = load(seismic, run.docs, n)
        info["seismic_merge_s"] = merge(seismic)
        print(f"  OpenSearch sparse_vector (seismic {params}): {n / info['seismic_load_s']:,.0f} docs/s, "
              f"force-merge {info['seismic_merge_s']:.1f}s", flush=True)
        stats = client.indices.stats(index=f"{exact.index_name},{seismic.index_name}", metric="store,segments")
        info["store_bytes"] = {name: s["primaries"]["store"]["size_in_bytes"] for name, s in stats["indices"].items()}
        empty = {"size": 0, "query": {"match_none": {}}}
        for name, batch in run.queries.items():
            qs = list(batch)
            truth = run.truth[name]
            p50, p99, _ = measure(lambda q: client.search(index=exact.index_name, body=empty), qs)
            run.add(FLOOR, {"request": "match_none, size 0"}, name, p50, p99, None)
            p50, p99, hits = measure(lambda q: exact.search(q, k=k), qs)
            run.add(EXACT, {"field": "rank_features", "query": "neural_sparse"}, name, p50, p99,
                    recall([hit_ids(h) for h in hits], truth))
            for two in TWO_PHASE_GRID:
                p50, p99, hits = measure(lambda q: exact.search(q, k=k, mode="two_phase", method_parameters=two), qs)
                run.add(TWO_PHASE, two, name, p50, p99, recall([hit_ids(h) for h in hits], truth))
            for top_n, hf in ANN_GRID:
                if name == "no-expansion" and top_n > args.noexp_nnz + 3:
                    continue
                ann = {"top_n": top_n, "heap_factor": hf}
                p50, p99, hits = measure(lambda q: seismic.search(q, k=k, mode="ann", method_parameters=ann), qs)
                run.add(ANN, {"n_postings": args.seismic_postings, **ann}, name, p50, p99,
                        recall([hit_ids(h) for h in hits], truth))
    finally:
        if not keep:
            for index in (exact, seismic):
                client.indices.delete(index=index.index_name, ignore_unavailable=True)
    return info


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for queries, targets in TARGETS.items():
        for target in targets:
            cell = {engine: best_at(rows, engine, queries, target) for engine in ENGINES}
            two, ann, emb = cell[TWO_PHASE], cell[ANN], cell["embedded two-phase"]
            out[f"{queries}-{round(target * 1000):04d}"] = {
                "best": cell,
                "opensearch_two_phase_over_ann_p50": round(two["p50_ms"] / ann["p50_ms"], 3) if two and ann else None,
                "opensearch_ann_over_embedded_two_phase_p50": round(ann["p50_ms"] / emb["p50_ms"], 2) if ann and emb else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opensearch", required=True, metavar="URL", help="the node, e.g. http://127.0.0.1:9200")
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--doc-nnz", type=int, default=45)
    parser.add_argument("--query-nnz", type=int, default=40)
    parser.add_argument("--noexp-nnz", type=int, default=7)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seismic-postings", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the OpenSearch indexes afterwards")
    parser.add_argument("--out", default=None, help="write the JSON record here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    command = "python benchmarks/bench_peers_opensearch.py " + " ".join(sys.argv[1:])
    results: dict = {}
    load_before = os.getloadavg()
    for n in args.docs:
        run = Run(n, args)
        info = {"load_before": list(os.getloadavg()), "embedded": run.embedded()}
        info["opensearch"] = opensearch(run, args.opensearch, args.keep)
        info["load_after"] = list(os.getloadavg())
        summary = summarise(run.rows)
        for key, cell in summary.items():
            print(f"  {key}: OpenSearch two-phase / ANN p50 = {cell['opensearch_two_phase_over_ann_p50']}, "
                  f"OpenSearch ANN / embedded two-phase p50 = {cell['opensearch_ann_over_embedded_two_phase_p50']}",
                  flush=True)
        results[str(n)] = {"info": info, "summary": summary, "rows": run.rows}
        del run
        gc.collect()
    if args.out:
        record = benchmark_record("bench-peers-opensearch", command, SOURCES, ROOT, results)
        record["machine"]["load_before"] = list(load_before)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
