"""Exact top-k selection, ties broken by ascending row (or token id): one routine set for backends,
metrics and pruning."""

from __future__ import annotations

import numpy as np

_BLOCK = 64  # block width for the top-k lower bound
_TINY = np.nextafter(np.float32(0), np.float32(1))  # smallest positive float32


def top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (rows, scores) by descending score, ties broken by ascending row."""
    if rows.size > k:
        part = np.argpartition(-scores, k - 1)[:k]
        sel = scores >= scores[part].min()  # keep every tie at the boundary so the tie-break is by row
        rows, scores = rows[sel], scores[sel]
    order = np.lexsort((rows, -scores))[:k]
    return rows[order], scores[order]


def dense_top_k(scores: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-k positive entries of each row of a dense (queries, docs) score matrix.

    The k-th largest of the block maxima is a lower bound on each row's k-th best score, so only
    entries at or above it (usually about k) reach the exact selection in `top_k`.
    """
    n_q, n = scores.shape
    m = n // _BLOCK * _BLOCK
    maxima = scores[:, :m].reshape(n_q, -1, _BLOCK).max(axis=2)
    if m < n:
        maxima = np.concatenate([maxima, scores[:, m:].max(axis=1, keepdims=True)], axis=1)
    if maxima.shape[1] >= k:
        bound = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k]
    else:
        bound = np.zeros(n_q, dtype=np.float32)
    bound = np.maximum(bound, _TINY)  # only positive scores are hits
    flat = np.flatnonzero(scores >= bound[:, None])  # much faster than a 2-d np.nonzero
    splits = np.searchsorted(flat, np.arange(1, n_q, dtype=np.int64) * n)
    out = []
    for i, f in enumerate(np.split(flat, splits)):
        rows = f - i * n
        out.append(top_k(rows, scores[i, rows], k))
    return out


def topk_indices(scores: np.ndarray, k: int = 10, chunk: int = 4096) -> np.ndarray:
    """Row-wise indices of the k highest scores, best first, ties broken by lower index."""
    n, m = scores.shape
    k = min(k, m)
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk):
        block = scores[start:start + chunk]
        part = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (len(block), 1))
        vals = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        out[start:start + chunk] = np.take_along_axis(part, order, axis=1)
    return out
