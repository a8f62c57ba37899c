"""Evaluate scorers on a `PairedSplit`: dense cosine and D2S sparse (expanded / no-expansion queries)."""

from __future__ import annotations

import time

import numpy as np

from lsr.data.split import PairedSplit
from lsr.eval.metrics import both_directions
from lsr.sparse import SparseBatch, flops


def evaluate_dense(split: PairedSplit) -> dict:
    """The frozen dense model's own cosine (vectors are L2-normalised), exact."""
    t0 = time.perf_counter()
    scores = split.query_emb @ split.doc_emb.T
    out = both_directions(scores, split.query_doc)
    out["wall_s"] = time.perf_counter() - t0
    out["index_bytes"] = int(split.doc_emb.nbytes)
    return out


def evaluate_dense_head(model, split: PairedSplit) -> dict:
    """Cosine of the jointly trained dense head's vectors (`D2SModel.dense_vectors`), exact."""
    q, d = model.dense_vectors(split.query_emb), model.dense_vectors(split.doc_emb)
    t0 = time.perf_counter()
    out = both_directions(q @ d.T, split.query_doc)
    out["wall_s"] = time.perf_counter() - t0
    out["index_bytes"] = int(d.nbytes)
    return out


def encode_split(model, split: PairedSplit, expand_queries: bool = True,
                 device: str | None = None) -> tuple[SparseBatch, SparseBatch]:
    """Sparse query and document vectors of a split (documents are always expanded)."""
    queries = model.encode(split.query_emb, None if expand_queries else split.query_tokens, device=device)
    docs = model.encode(split.doc_emb, device=device)
    return queries, docs


def evaluate_sparse_vectors(queries: SparseBatch, docs: SparseBatch, query_doc: np.ndarray,
                            return_scores: bool = False) -> dict | tuple[dict, np.ndarray]:
    """Metrics in both directions, sparsity and FLOPs from already-encoded sparse vectors
    (and, with `return_scores`, the (queries x docs) score matrix, e.g. for run files)."""
    t0 = time.perf_counter()
    scores = queries.dot(docs)
    out = both_directions(scores, query_doc)
    out["wall_s"] = time.perf_counter() - t0
    out["query_nnz"] = queries.sparsity()["mean_nnz"]
    out["doc_nnz"] = docs.sparsity()["mean_nnz"]
    out["flops"] = flops(queries, docs)
    # postings of an inverted index: int32 doc id + float32 weight per non-zero
    out["index_bytes"] = int(docs.csr.nnz * 8)
    return (out, scores) if return_scores else out


def evaluate_sparse(model, split: PairedSplit, expand_queries: bool = True, device: str | None = None) -> dict:
    queries, docs = encode_split(model, split, expand_queries, device)
    return evaluate_sparse_vectors(queries, docs, split.query_doc)
