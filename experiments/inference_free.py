"""The inference-free query table (`python -m experiments.modes inference-free`): quality and end-to-end latency, caption proxy.

Quality, text->image on each split (captions query, caption-0 documents): the frozen dense model, the
default D2S model's expanded and no-expansion queries, and table-weighted queries over D2S documents:
(a) the stock ``bert-uncased`` IDF table OpenSearch ships, over the default model's documents (no
training), the IDF over the training captions (the tables' starting point), (b) a table learned against
the default model's frozen documents, (c) a table learned together with its documents.

Latency, words in -> hits out, one query at a time on this machine (p50 / p99 over a sample): in the
embedded index through `SparseSearcher` with a D2S encoder (MiniLM on the query path) and with the
inference-free encoder (no network); with a node, OpenSearch with the Python encoder (``query_tokens``),
the SPARSE_TOKENIZE model (``query_text`` + ``model_id``: the node tokenizes and weighs) and the stock
``bert-uncased`` analyzer (``query_text`` + ``analyzer``), with recall over every query.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import numpy as np

from lsr.eval.metrics import t2i_metrics

log = logging.getLogger(__name__)

SPLITS = ("proxy:f30k/test", "proxy:coco/test")


def _row(name: str, scores: np.ndarray, query_doc: np.ndarray, queries=None, docs=None) -> dict:
    from lsr.sparse import flops

    row = {"mode": name, **t2i_metrics(scores, query_doc)}
    if queries is not None:
        row.update(query_nnz=queries.sparsity()["mean_nnz"], doc_nnz=docs.sparsity()["mean_nnz"],
                   flops=flops(queries, docs))
    return row


def start_tables(vocab) -> list[tuple[str, np.ndarray]]:
    """The untrained tables, computed once for every split: OpenSearch's stock IDF and our training IDF."""
    from lsr.data.sources import load_pairs
    from lsr.encoders.inference_free import idf_from_token_ids, stock_idf
    from lsr.app.training import split_query_tokens
    from lsr.node.install import find_ml_plugin_zip

    train_tokens = split_query_tokens(load_pairs("proxy:f30k", "train", vocab=vocab), vocab)
    return [("(a) stock bert-uncased IDF (OpenSearch's analyzer table), default documents",
             stock_idf(vocab, find_ml_plugin_zip())),
            ("IDF over the training captions (the initial table), default documents",
             idf_from_token_ids(train_tokens, len(vocab)))]


def quality_rows(split, vocab, default, tables, table_only=None, joint=None) -> list[dict]:
    """Text->image rows of one split (module docstring); `default` etc. are encoders, `tables` the
    untrained (name, table) pairs of `start_tables`."""
    from lsr.encoders.inference_free import query_vectors
    from lsr.app.training import split_query_tokens

    qd = split.query_doc
    docs = default.encode_dense(split.doc_emb)
    rows = [_row("dense cosine (frozen MiniLM teacher)", split.query_emb @ split.doc_emb.T, qd)]
    for expand in (True, False):
        q = default.encode_dense(split.query_emb, None if expand else split.query_tokens)
        rows.append(_row(f"D2S default, {'expanded' if expand else 'no-expansion'} queries (MiniLM + projection)",
                         q.dot(docs), qd, q, docs))
    tokens = split_query_tokens(split, vocab)
    tables = list(tables)
    if table_only is not None:
        tables.append(("(b) learned table, default documents (frozen)", table_only.table))
    for name, table in tables:
        q = query_vectors(table, tokens)
        rows.append(_row(name, q.dot(docs), qd, q, docs))
    if joint is not None:
        joint_docs = joint.encode_dense(split.doc_emb)
        q = query_vectors(joint.table, tokens)
        rows.append(_row("(c) learned table + documents (doc-only D2S)", q.dot(joint_docs), qd, q, joint_docs))
    return rows


def percentiles_ms(fn: Callable[[int], object], n: int) -> dict[str, float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        times.append(1000.0 * (time.perf_counter() - start))
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def latency_rows(split, vocab, default_dir: str, table_only_dir: str, n: int, opensearch_url: str | None) -> list[dict]:
    """Words in -> hits out over the split's documents (module docstring)."""
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.encoders.sparse import D2SEncoder
    from lsr.search import SparseSearcher

    texts = split.query_texts
    row_of = {d: i for i, d in enumerate(split.doc_ids)}
    d2s = D2SEncoder.from_pretrained(default_dir, vocab=vocab)
    free = D2SEncoder.from_pretrained(table_only_dir, vocab=vocab)
    index = EmbeddedIndex(vocab_size=len(vocab))
    index.index(split.doc_ids, d2s.encode_dense(split.doc_emb))
    rows = []
    for name, searcher, options in (
            ("embedded: D2S expanded (MiniLM on the query path)", SparseSearcher(index, d2s), {}),
            ("embedded: D2S no-expansion (MiniLM on the query path)", SparseSearcher(index, d2s), {"expand": False}),
            ("embedded: inference-free (b) (no network on the query path)", SparseSearcher(index, free), {})):
        searcher.search(texts[0], k=10, **options)  # warm-up: loads the encoder
        rows.append({"mode": name, **percentiles_ms(lambda i: searcher.search(texts[i], k=10, **options), n)})
    if opensearch_url:
        rows += opensearch_latency_rows(split, vocab, d2s, free, n, opensearch_url, row_of)
    for r in rows:
        r.setdefault("queries", n)
    return rows


def opensearch_latency_rows(split, vocab, d2s, free, n: int, url: str, row_of: dict) -> list[dict]:
    """OpenSearch over the default documents: Python-encoded table queries, the SPARSE_TOKENIZE model and the
    stock analyzer; recall over every query, latency over the first `n`."""
    from uuid import uuid4

    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.backends.opensearch.text_query import search_text
    from lsr.backends.opensearch.tokenize_model import register_tokenize_model
    from experiments.modes import recall
    from lsr.search import SparseSearcher

    texts = split.query_texts
    node = OpenSearchIndex(url, index=f"lsr-inference-free-{uuid4().hex[:8]}", vocab=vocab)
    rows = []
    try:
        node.index(split.doc_ids, d2s.encode_dense(split.doc_emb))
        node.commit()
        model_id = register_tokenize_model(node.client, free.tokenize_model_files())
        python_path = SparseSearcher(node, free)

        def analyzer(i: int) -> list[str]:
            body = {"size": 10, "_source": False,
                    "query": {"neural_sparse": {node.field: {"query_text": texts[i], "analyzer": "bert-uncased"}}}}
            return [h["_id"] for h in node.client.search(index=node.index_name, body=body)["hits"]["hits"]]

        calls = [("OpenSearch: inference-free (b), encoded in Python (query_tokens)",
                  lambda i: [h.id for h in python_path.search(texts[i], k=10, explain=False)]),
                 ("OpenSearch: inference-free (b), SPARSE_TOKENIZE model on the node (query_text)",
                  lambda i: [h.id for h in search_text(node, texts[i], k=10, model_id=model_id)]),
                 ("OpenSearch: (a) stock bert-uncased analyzer on the node (query_text)", analyzer)]
        for name, call in calls:
            call(0)
            ranked = [[row_of[d] for d in call(i)] for i in range(len(texts))]
            rows.append({"mode": name, **recall(ranked, split.query_doc), **percentiles_ms(call, n)})
    finally:
        node.drop()
    return rows


def inference_free_table(default_dir: str, table_only_dir: str | None = None, joint_dir: str | None = None,
                         splits: Sequence[str] = SPLITS, latency_queries: int = 200,
                         opensearch_url: str | None = None) -> dict:
    """The whole report: quality rows per split, latency rows on the first split."""
    from lsr.data.sources import load_split_spec
    from lsr.encoders.sparse import D2SEncoder
    from lsr.vocab import Vocabulary

    vocab = Vocabulary()
    default = D2SEncoder.from_pretrained(default_dir, vocab=vocab)
    table_only = D2SEncoder.from_pretrained(table_only_dir, vocab=vocab) if table_only_dir else None
    joint = D2SEncoder.from_pretrained(joint_dir, vocab=vocab) if joint_dir else None
    report = {"direction": "text->image", "source": "caption proxy (MiniLM teacher, caption 0 plays the image)",
              "models": {"default": default_dir, "table_only": table_only_dir, "joint": joint_dir},
              "quality": {}, "table": {}}
    first, tables = None, start_tables(vocab)
    for spec in splits:
        split = load_split_spec(spec, vocab)
        first = first or split
        rows = quality_rows(split, vocab, default, tables, table_only, joint)
        report["quality"][split.name] = rows
        report["table"][split.name] = {r["mode"]: r for r in rows}
    if table_only_dir and first is not None:
        rows = latency_rows(first, vocab, default_dir, table_only_dir, latency_queries, opensearch_url)
        report["latency"] = {"split": first.name, "rows": rows}
        report["table"]["latency"] = {r["mode"]: r for r in rows}
    return report


def format_report(report: dict) -> str:
    lines = []
    for name, rows in report["quality"].items():
        lines.append(f"{name} (text->image, caption proxy)")
        lines.append(f"{'mode':<92} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'q nnz':>6} {'FLOPs':>6}")
        for r in rows:
            extra = f"{r['query_nnz']:6.1f} {r['flops']:6.2f}" if "flops" in r else f"{'-':>6} {'-':>6}"
            lines.append(f"{r['mode']:<92} {r['R@1']:6.1f} {r['R@5']:6.1f} {r['R@10']:6.1f} {extra}")
    if "latency" in report:
        lines.append(f"latency, words in -> hits out ({report['latency']['split']})")
        for r in report["latency"]["rows"]:
            rec = f"  R@1 {r['R@1']:.1f} R@5 {r['R@5']:.1f} R@10 {r['R@10']:.1f}" if "R@1" in r else ""
            lines.append(f"{r['mode']:<92} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms{rec}")
    return "\n".join(lines)
