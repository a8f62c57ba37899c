"""Evaluation through a backend: index the split's vectors, `search_batch` every query, score the
hits, write the TREC runs from that path.

The in-memory matrix product (`lsr.eval.evaluate`) is the fast exact reference. A backend that stores
weights approximately (OpenSearch keeps 9 significant bits) may swap items whose exact scores are
within its relative bound; `tolerance` says how far R@K may then move: the share of queries whose
relevant item scores within the bound of the K-th / (K+1)-th best.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from lsr.backends.base import Hit, SparseBackend
from lsr.data.split import PairedSplit
from lsr.eval.metrics import DEPTH, KS, i2t_from_top, t2i_from_top
from lsr.eval.trec import write_hits_run
from lsr.sparse import SparseBatch

BackendFactory = Callable[[str], SparseBackend]  # name of the collection -> an empty backend


def ranked_rows(hits: list[list[Hit]], ids: list[str], depth: int = DEPTH) -> np.ndarray:
    """(queries x depth) row numbers of the hit ids in `ids`; -1 where a ranking is shorter."""
    row = {doc_id: i for i, doc_id in enumerate(ids)}
    top = np.full((len(hits), depth), -1, dtype=np.int64)
    for qi, ranked in enumerate(hits):
        for rank, hit in enumerate(ranked[:depth]):
            top[qi, rank] = row[hit.id]
    return top


def _search_all(make: BackendFactory, name: str, ids: list[str], docs: SparseBatch, queries: SparseBatch,
                dense: tuple[np.ndarray, np.ndarray] | None = None, scoring: dict | None = None,
                **options) -> list[list[Hit]]:
    """Index `docs` (with their dense vectors when `dense` = (docs, queries) is given) and search every
    query: in one batch, or one by one in a scoring mode (``{"rerank": "dense", "candidates": N}`` or
    ``{"hybrid": SPEC, "depth": N}``)."""
    backend = make(name)
    try:
        backend.index(ids, docs, dense=dense[0] if dense else None)  # an all-zero vector fails here, as it
        backend.commit()                                             # is never retrievable in the matrix path
        if not scoring:
            return backend.search_batch(queries, k=DEPTH, **options)
        scoring = dict(scoring)
        if scoring.pop("rerank", None) == "dense":
            n = scoring.get("candidates", 100)
            return [backend.search_reranked(q, d, k=DEPTH, candidates=n, **options) for q, d in zip(queries, dense[1])]
        return [backend.search_hybrid(q, d, k=DEPTH, fusion=scoring["hybrid"], depth=scoring.get("depth", 100),
                                      **options) for q, d in zip(queries, dense[1])]
    finally:
        backend.close()


def evaluate_backend(make: BackendFactory, split: PairedSplit, queries: SparseBatch, docs: SparseBatch,
                     tag: str, out_dir: Path | None = None, scoring: dict | None = None,
                     dense: tuple[np.ndarray, np.ndarray] | None = None, **options) -> dict:
    """Both directions through backends made by `make`: images indexed for text->image, captions for
    image->text. Runs go to `out_dir/<split>.<tag>.<t2i|i2t>.run`. `scoring` selects a scoring mode
    (dense re-ranking or hybrid fusion) with dense vectors beside the sparse ones: `dense` = (documents',
    queries'), by default the split's frozen vectors."""
    t0 = time.perf_counter()
    doc_dense, query_dense = dense if dense is not None else (split.doc_emb, split.query_emb)
    t2i_dense = (doc_dense, query_dense) if scoring else None
    i2t_dense = (query_dense, doc_dense) if scoring else None
    t2i_hits = _search_all(make, f"{tag}-images", split.doc_ids, docs, queries, t2i_dense, scoring, **options)
    i2t_hits = _search_all(make, f"{tag}-captions", split.query_ids, queries, docs, i2t_dense, scoring, **options)
    out = {"t2i": t2i_from_top(ranked_rows(t2i_hits, split.doc_ids), split.query_doc),
           "i2t": i2t_from_top(ranked_rows(i2t_hits, split.query_ids), split.query_doc),
           "wall_s": time.perf_counter() - t0}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_hits_run(out_dir / f"{split.name}.{tag}.t2i.run", t2i_hits, split.query_ids, tag)
        write_hits_run(out_dir / f"{split.name}.{tag}.i2t.run", i2t_hits, split.doc_ids, tag)
    return out


def tolerance(scores: np.ndarray, query_doc: np.ndarray, bound: float) -> dict[str, dict[str, float]]:
    """Per direction and K, the largest R@K change (percentage points) that score errors within the
    relative `bound`, or ties (which backends may break in another order), can cause.

    A query's relevant item is in its top K exactly when it beats the K-th best irrelevant item, so
    the hit can flip only when those two scores lie within the bound of each other. `scores` is the
    exact (captions x images) matrix.
    """
    query_doc = np.asarray(query_doc)
    n_captions, n_images = scores.shape
    relevant_mask = np.zeros((n_captions, n_images), dtype=bool)
    relevant_mask[np.arange(n_captions), query_doc] = True
    out = {}
    for direction, s, mask in (("t2i", scores, relevant_mask), ("i2t", scores.T, relevant_mask.T)):
        relevant = np.where(mask, s, -np.inf).max(axis=1)  # i2t: the best of an image's captions
        others = -np.sort(-np.where(mask, -np.inf, s), axis=1)
        row = {}
        for k in KS:
            kth = others[:, min(k, others.shape[1]) - 1]
            with np.errstate(invalid="ignore"):  # -inf: fewer than k irrelevant items, nothing to swap with
                near = np.abs(kth - relevant) <= bound * np.maximum(np.abs(kth), np.abs(relevant))
            row[f"R@{k}"] = 100.0 * float(near.mean())
        out[direction] = row
    return out
