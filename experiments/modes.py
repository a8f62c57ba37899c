"""The scoring modes measured on the caption proxy, one table per command:

    python -m experiments.modes rerank|hybrid|sets|inference-free --model DIR [--url URL] [--out FILE]

Text->image on a Flickr30k split: the caption-0 documents go into an embedded index with their D2S
vectors and their frozen MiniLM vectors (dense=); every other caption is a query. Recall comes from
the backend's own results (stage-1 lists, the fusion formulas of `lsr.backends.fusion`); latency is
the backend call itself (`search_reranked`, `search_hybrid`, one query at a time, p50 over a sample).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from experiments import run_main
from lsr.backends.embedded import EmbeddedIndex
from lsr.backends.fusion import NORMALIZATIONS, Fusion, fuse, knn_score
from lsr.eval.metrics import KS

log = logging.getLogger(__name__)

CANDIDATES = (20, 50, 100, 200, 1000)
WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def recall(ranked: Sequence[Sequence[int]], query_doc: np.ndarray) -> dict[str, float]:
    """R@K (percent) of ranked document rows; a relevant row missing from a list is a miss at every K."""
    out = {}
    for k in KS:
        out[f"R@{k}"] = 100.0 * float(np.mean([int(d) in list(r[:k]) for r, d in zip(ranked, query_doc)]))
    return out


def p50_ms(fn: Callable[[int], object], n: int) -> float:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(1000.0 * (time.perf_counter() - start))
    return float(np.median(times))


class ProxyCollection:
    """A split's documents indexed with sparse + dense vectors, and its queries encoded both ways."""

    def __init__(self, model_dir: str, split_spec: str):
        from lsr.data.sources import load_split_spec
        from lsr.encoders.sparse import D2SEncoder
        from lsr.vocab import Vocabulary

        self.vocab = Vocabulary()
        self.split = load_split_spec(split_spec, self.vocab)
        self.encoder = D2SEncoder.from_pretrained(model_dir, vocab=self.vocab)
        self.index = EmbeddedIndex(vocab_size=len(self.vocab))
        # the dense half: the frozen vectors, or the jointly trained dense head's when the model has one
        self.doc_dense = self.encoder.dense_vectors(self.split.doc_emb)
        self.query_dense = self.encoder.dense_vectors(self.split.query_emb)
        self.index.index(self.split.doc_ids, self.encoder.encode_dense(self.split.doc_emb), dense=self.doc_dense)
        self.queries = list(self.encoder.encode_dense(self.split.query_emb))
        self.row = {d: i for i, d in enumerate(self.split.doc_ids)}

    def stage1(self, depth: int) -> list[list[int]]:
        """Each query's sparse top `depth` as document rows (the backend's own lists)."""
        return [[self.row[h.id] for h in hits] for hits in self.index.search_batch(self.queries, k=depth)]

    def dense_top(self, depth: int) -> list[list[int]]:
        sims = self.query_dense @ self.doc_dense.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, :depth]
        return [list(r) for r in order]

    def sizes(self) -> dict[str, int]:
        return {"sparse_index_bytes": self.index.memory_bytes(),
                "dense_vectors_bytes": int(self.doc_dense.nbytes)}


def rerank_table(model_dir: str, split_spec: str = "proxy:f30k/test", candidates: Sequence[int] = CANDIDATES,
                 latency_queries: int = 200, late: bool = True, opensearch_url: str | None = None) -> dict:
    """Sparse-only, dense-only and sparse top N re-scored by dense cosine / late interaction, per N."""
    from lsr.search.tokens import TokenStore, late_scores

    c = ProxyCollection(model_dir, split_spec)
    qd, split, n_lat = c.query_dense, c.split, min(latency_queries, len(c.queries))
    depth = max(candidates)
    first = c.stage1(depth)
    rows = [{"mode": "sparse only", **recall(first, split.query_doc),
             "p50_ms": p50_ms(lambda i: c.index.search(c.queries[i], k=10), n_lat)}]
    dense_lists = c.dense_top(10)
    rows.append({"mode": "dense only (all documents)", **recall(dense_lists, split.query_doc),
                 "p50_ms": p50_ms(lambda i: np.argsort(-(c.doc_dense @ qd[i]))[:10], n_lat)})
    store = q_tokens = None
    if late:
        dense = c.encoder.dense
        store = TokenStore.build(split.doc_ids, dense.encode_tokens(split.doc_texts))
        q_tokens = dense.encode_tokens(split.query_texts)
    for n in candidates:
        cands = [r[:n] for r in first]
        by_cos = [sorted(r, key=lambda j, i=i: -float(c.doc_dense[j] @ qd[i])) for i, r in enumerate(cands)]
        rows.append({"mode": f"sparse top {n} -> dense", "candidates": n, **recall(by_cos, split.query_doc),
                     "p50_ms": p50_ms(lambda i: c.index.search_reranked(c.queries[i], qd[i], k=10, candidates=n),
                                      n_lat)})
        if late:
            def late_order(i: int, r: list[int]) -> list[int]:
                if not r:
                    return r
                s = late_scores(q_tokens[i], store.get([split.doc_ids[j] for j in r]), c.doc_dense[r] @ qd[i])
                return [r[j] for j in np.argsort(-s, kind="stable")]

            ranked = [late_order(i, r) for i, r in enumerate(cands)]

            def timed(i: int) -> None:
                hits = c.index.search(c.queries[i], k=n)
                late_order(i, [c.row[h.id] for h in hits])

            rows.append({"mode": f"sparse top {n} -> late", "candidates": n, **recall(ranked, split.query_doc),
                         "p50_ms": p50_ms(timed, n_lat)})
        log.info("candidates %d done", n)
    if opensearch_url:
        rows += opensearch_rows(c, opensearch_url, n_lat, candidates=[n for n in candidates if n <= 200])
    out = {"split": split.name, "direction": "text->image", "queries": len(c.queries), "documents": len(split.doc_ids),
           "source": "caption proxy (MiniLM teacher, caption 0 plays the image)", "rows": rows,
           "table": {r["mode"]: r for r in rows}, **c.sizes()}
    if store is not None:
        out["token_vectors_bytes"] = store.nbytes
    return out


def opensearch_rows(c: ProxyCollection, url: str, n_lat: int, candidates: Sequence[int] = (),
                    fusion: Fusion | None = None, depth: int = 100) -> list[dict]:
    """The same modes inside OpenSearch (rescore / hybrid query + pipeline) on a fresh index of the split:
    recall over every query, p50 over the first `n_lat` (client, node and encoder share the machine)."""
    from uuid import uuid4

    from lsr.backends.opensearch import OpenSearchIndex

    node = OpenSearchIndex(url, index=f"lsr-modes-{uuid4().hex[:8]}", vocab=c.vocab)
    qd, rows = c.query_dense, []
    try:
        node.index(c.split.doc_ids, c.encoder.encode_dense(c.split.doc_emb), dense=c.doc_dense)
        node.commit()
        calls = [(f"OpenSearch: sparse top {n} -> dense (rescore in the engine)",
                  lambda i, n=n: node.search_reranked(c.queries[i], qd[i], k=10, candidates=n)) for n in candidates]
        if fusion is not None:
            calls.append((f"OpenSearch: hybrid {fusion.label()} (hybrid query + pipeline)",
                          lambda i: node.search_hybrid(c.queries[i], qd[i], k=10, fusion=fusion, depth=depth)))
        calls.insert(0, ("OpenSearch: sparse only", lambda i: node.search(c.queries[i], k=10)))
        for mode, call in calls:
            ranked = [[c.row[h.id] for h in call(i)] for i in range(len(c.queries))]
            rows.append({"mode": mode, **recall(ranked, c.split.query_doc), "p50_ms": p50_ms(call, n_lat)})
    finally:
        node.drop()
    return rows


def hybrid_lists(c: ProxyCollection, depth: int) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Each query's sparse and dense result lists ({id: score}), as the backend's hybrid search fuses them."""
    sparse = [{h.id: h.score for h in hits} for hits in c.index.search_batch(c.queries, k=depth)]
    sims = c.query_dense @ c.doc_dense.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :depth]
    ids = c.split.doc_ids
    dense = [{ids[j]: float(s) for j, s in zip(r, knn_score(sims[i, r]))} for i, r in enumerate(top)]
    return sparse, dense


def fused_recall(c: ProxyCollection, lists, fusion: Fusion) -> dict[str, float]:
    ranked = []
    for s, d in zip(*lists):
        f = fuse([s, d], fusion)
        ranked.append([c.row[i] for i in sorted(f, key=lambda i: -f[i])[:10]])
    return recall(ranked, c.split.query_doc)


def hybrid_table(model_dir: str, dev_spec: str = "proxy:f30k/dev", test_spec: str = "proxy:f30k/test",
                 depth: int = 100, latency_queries: int = 200, opensearch_url: str | None = None) -> dict:
    """Choose the fusion (technique, sparse weight) on dev by R@1 + R@5 + R@10, report it on test beside
    each part alone and each technique's dev-best weight."""
    dev = ProxyCollection(model_dir, dev_spec)
    dev_lists = hybrid_lists(dev, depth)
    grid = [Fusion(t, w) for t in NORMALIZATIONS for w in WEIGHTS] + [Fusion("rrf")]
    dev_scores = {f.label(): fused_recall(dev, dev_lists, f) for f in grid}
    best = {}
    for f in grid:
        total = sum(dev_scores[f.label()].values())
        if f.technique not in best or total > best[f.technique][1]:
            best[f.technique] = (f, total)
    chosen = max(best.values(), key=lambda ft: ft[1])[0]
    test = ProxyCollection(model_dir, test_spec)
    lists = hybrid_lists(test, depth)
    qd, n_lat = test.query_dense, min(latency_queries, len(test.queries))
    rows = [{"mode": "sparse only", **recall([[test.row[i] for i in s][:10] for s in lists[0]], test.split.query_doc),
             "p50_ms": p50_ms(lambda i: test.index.search(test.queries[i], k=10), n_lat)},
            {"mode": "dense only", **recall([[test.row[i] for i in d][:10] for d in lists[1]], test.split.query_doc),
             "p50_ms": p50_ms(lambda i: np.argsort(-(test.doc_dense @ qd[i]))[:10], n_lat)}]
    for technique, (f, _) in best.items():
        rows.append({"mode": f"hybrid {f.label()}" + (" (chosen on dev)" if f == chosen else ""),
                     **fused_recall(test, lists, f), "dev": dev_scores[f.label()],
                     "p50_ms": p50_ms(lambda i, f=f: test.index.search_hybrid(test.queries[i], qd[i], k=10, fusion=f,
                                                                              depth=depth), n_lat)})
    if opensearch_url:
        rows += opensearch_rows(test, opensearch_url, n_lat, fusion=chosen, depth=depth)
    return {"dev": dev.split.name, "test": test.split.name, "direction": "text->image", "depth": depth,
            "source": "caption proxy (MiniLM teacher, caption 0 plays the image)", "chosen": chosen.label(),
            "dev_grid": dev_scores, "rows": rows, "table": {r["mode"]: r for r in rows}, **test.sizes()}


def format_table(report: dict) -> str:
    lines = [f"{report.get('split') or report.get('test')} ({report['direction']}, caption proxy)",
             f"{'mode':<42} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'p50 ms':>8}"]
    for r in report["rows"]:
        lines.append(f"{r['mode']:<42} {r['R@1']:6.1f} {r['R@5']:6.1f} {r['R@10']:6.1f} {r['p50_ms']:8.2f}")
    sizes = {k: v for k, v in report.items() if k.endswith("_bytes")}
    lines.append("bytes: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    return "\n".join(lines)


SPLITS_IF = ("proxy:f30k/test", "proxy:coco/test")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.modes",
                                description="Measure a scoring mode on the caption proxy (one results table).")
    p.add_argument("table", choices=("rerank", "hybrid", "sets", "inference-free"))
    p.add_argument("--model", required=True, help="D2S model directory (inference-free: the default model)")
    p.add_argument("--table-only", default=None, metavar="DIR",
                   help="inference-free: a table trained against --model's frozen documents (variant b)")
    p.add_argument("--joint", default=None, metavar="DIR",
                   help="inference-free: a table trained with its documents (variant c)")
    p.add_argument("--splits", nargs="+", default=None, metavar="SOURCE/SPLIT",
                   help="inference-free: reported splits (default: Flickr30k and COCO test)")
    p.add_argument("--split", default="proxy:f30k/test", metavar="SOURCE/SPLIT", help="reported split")
    p.add_argument("--dev", default="proxy:f30k/dev", metavar="SOURCE/SPLIT", help="hybrid: split to choose on")
    p.add_argument("--candidates", type=int, nargs="+", default=list(CANDIDATES))
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--latency-queries", type=int, default=200)
    p.add_argument("--no-late", action="store_true", help="rerank: skip late interaction")
    p.add_argument("--url", "--opensearch", dest="url", default=None, metavar="URL",
                   help="rerank / hybrid / inference-free: also run the modes inside this OpenSearch node")
    p.add_argument("--out", default=None, help="write the report as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    if args.table == "rerank":
        report = rerank_table(args.model, args.split, args.candidates, args.latency_queries,
                              late=not args.no_late, opensearch_url=args.url)
    elif args.table == "hybrid":
        report = hybrid_table(args.model, args.dev, args.split, args.depth, args.latency_queries,
                              opensearch_url=args.url)
    elif args.table == "inference-free":
        from experiments.inference_free import format_report, inference_free_table

        report = inference_free_table(args.model, args.table_only, args.joint, args.splits or SPLITS_IF,
                                      args.latency_queries, opensearch_url=args.url)
        _write(args.out, report)
        print(format_report(report))
        return 0
    else:
        from experiments.sets import run_sets_experiment

        report = run_sets_experiment(args.model, args.split, args.latency_queries)
    _write(args.out, report)
    print(format_table(report))
    return 0


def _write(path: str | None, report: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(main())
