"""The embedded index's forward store (document -> terms) and its two-phase search.

`ForwardStore` keeps every row's vector document-major (CSR: int64 row offsets, int32 term ids ascending
within a row, float32 weights), beside the term-major postings. Two-phase search (`two_phase`) finds
candidates with the query's heaviest terms over the postings, then re-scores each candidate exactly from
this store: a candidate's final score is the float32 sum, in ascending term order, of q_w * d_w over all
the query's terms, the number exact search computes.

The parameters are those of OpenSearch's ``neural_sparse_two_phase_processor`` (``two_phase_parameter``),
with its defaults and its rules: ``prune_type`` / ``prune_ratio`` split the query into heavy and light terms
(``max_ratio``: weight >= ratio x the heaviest; ``top_k``: the ratio heaviest; ``alpha_mass``: the heaviest
whose running sum stays <= ratio x the total; ``abs_value``: weight >= ratio), ``expansion_rate`` (>= 1)
sets the candidate window to int(k x rate), which may not exceed ``max_window_size`` (>= 50). One more
parameter, ``n_postings`` (the name SEISMIC and OpenSearch's sparse ANN index give it), makes stage 1 read
only each heavy term's n_postings heaviest postings (`ImpactLists`, cut from the postings on first use):
stage 1 then costs about n_postings x heavy terms instead of the heavy terms' whole lists, and stage 2
still re-scores every candidate exactly (0, the default: the whole lists, as OpenSearch does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from lsr.errors import InvalidInputError
from lsr.sparse import SparseVector
from lsr.topk import dense_top_k, top_k

PRUNE_TYPES = ("max_ratio", "top_k", "alpha_mass", "abs_value", "none")
DEFAULTS = {"prune_type": "max_ratio", "prune_ratio": 0.4, "expansion_rate": 5.0, "max_window_size": 10_000,
            "n_postings": 0}


@dataclass(frozen=True)
class TwoPhase:
    """Validated two-phase parameters (OpenSearch's names and defaults)."""

    prune_type: str = "max_ratio"
    prune_ratio: float = 0.4
    expansion_rate: float = 5.0
    max_window_size: int = 10_000
    n_postings: int = 0  # > 0: stage 1 reads each heavy term's n_postings heaviest postings only

    @classmethod
    def parse(cls, parameters: Mapping[str, Any] | None) -> "TwoPhase":
        params = dict(parameters or {})
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise InvalidInputError(f"Unknown two-phase parameter(s) {', '.join(sorted(unknown))}; the parameters are "
                                    f"{', '.join(DEFAULTS)}.")
        out = {**DEFAULTS, **params}
        try:
            ratio, rate, window = float(out["prune_ratio"]), float(out["expansion_rate"]), int(out["max_window_size"])
        except (TypeError, ValueError):
            raise InvalidInputError(f"Two-phase parameters must be numbers, got {params!r}.") from None
        kind = out["prune_type"]
        if kind not in PRUNE_TYPES:
            raise InvalidInputError(f"prune_type {kind!r}; choose one of {', '.join(PRUNE_TYPES)}.")
        valid = {"top_k": ratio > 0 and ratio == int(ratio), "alpha_mass": 0 <= ratio < 1,
                 "max_ratio": 0 <= ratio < 1, "abs_value": ratio >= 0}.get(kind, True)
        if not valid:
            raise InvalidInputError(f"Illegal prune_ratio {ratio:g} for prune_type {kind}.")
        if rate < 1.0:
            raise InvalidInputError(f"expansion_rate must be >= 1.0, got {rate:g}.")
        if window < 50:
            raise InvalidInputError(f"max_window_size must be >= 50, got {window}.")
        n_postings = out["n_postings"]
        if isinstance(n_postings, bool) or not isinstance(n_postings, int) or n_postings < 0:
            raise InvalidInputError(f"n_postings must be a non-negative integer (0: every posting), got {n_postings!r}.")
        return cls(kind, ratio, rate, window, n_postings)

    def window(self, k: int) -> int:
        size = int(k * self.expansion_rate)
        if size > self.max_window_size:
            raise InvalidInputError(f"The two-phase window k x expansion_rate = {size} exceeds max_window_size "
                                    f"{self.max_window_size}; lower k or expansion_rate, or raise max_window_size.")
        return size

    def heavy(self, weights: np.ndarray) -> np.ndarray:
        """Bool mask of the query terms that pick candidates (OpenSearch's PruneUtils rules)."""
        kind, ratio = self.prune_type, self.prune_ratio
        if kind == "none" or ratio == 0 or weights.size == 0:
            return np.ones(weights.size, dtype=bool)
        if kind == "max_ratio":
            return weights >= ratio * weights.max()
        if kind == "abs_value":
            return weights >= ratio
        order = np.argsort(-weights, kind="stable")
        mask = np.zeros(weights.size, dtype=bool)
        if kind == "top_k":
            mask[order[: int(ratio)]] = True
        else:  # alpha_mass
            running = np.cumsum(weights[order].astype(np.float32))
            mask[order[running <= ratio * np.float32(weights.sum(dtype=np.float32))]] = True
        return mask


def two_phase(index: Any, query: SparseVector, k: int, params: TwoPhase,
              allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (rows, scores) of an `EmbeddedIndex`: the top int(k x expansion_rate) rows by the heavy terms
    (over the postings, `allowed` rows only), each re-scored exactly from the forward store."""
    window = params.window(k)
    heavy = params.heavy(query.weights)
    if params.n_postings:
        rows = _impact_candidates(index, query.ids[heavy], query.weights[heavy], params.n_postings, window, allowed)
    else:
        stage1 = (query.ids[heavy], query.weights[heavy], np.array([0, int(heavy.sum())]))
        scores = index._scores(*stage1) if allowed is None else index._scores(*stage1, allowed)
        rows = dense_top_k(scores, window)[0][0]
    q_dense = np.zeros(index.vocab_size, dtype=np.float32)
    q_dense[query.ids] = query.weights
    return top_k(rows, index.forward_store().rescore(rows, q_dense), k)


class ImpactLists:
    """Each term's `n_postings` heaviest postings (all of a shorter list), rows ascending within a term: the
    statically pruned lists that SEISMIC and OpenSearch's sparse ANN index call ``n_postings``. Derived from
    the postings on first use (not stored); rebuilt when the postings change."""

    def __init__(self, offsets: np.ndarray, docs: np.ndarray, vals: np.ndarray, n_postings: int):
        counts = np.diff(offsets)
        keep = np.ones(docs.size, dtype=bool)
        for t in np.flatnonzero(counts > n_postings).tolist():
            s, e = int(offsets[t]), int(offsets[t + 1])
            top = np.argpartition(-np.asarray(vals[s:e]), n_postings - 1)[:n_postings]
            keep[s:e] = False
            keep[s + top] = True
        self.offsets = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(np.minimum(counts, n_postings), out=self.offsets[1:])
        self.docs = np.ascontiguousarray(docs[keep], dtype=np.int32)
        self.vals = np.ascontiguousarray(vals[keep], dtype=np.float32)
        self.source = docs  # the postings these were cut from

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.docs.nbytes + self.vals.nbytes)


def impact_lists(index: Any, n_postings: int) -> ImpactLists:
    """The index's `ImpactLists` for `n_postings`, cut again when its postings changed."""
    index._build()
    cache = index.__dict__.setdefault("_impact_lists", {})
    lists = cache.get(n_postings)
    if lists is None or lists.source is not index._docs:
        for key in [key for key, old in cache.items() if old.source is not index._docs]:
            del cache[key]  # cut from postings that changed since
        lists = cache[n_postings] = ImpactLists(index._offsets, index._docs, index._vals, n_postings)
    return lists


def _impact_candidates(index: Any, terms: np.ndarray, weights: np.ndarray, n_postings: int, window: int,
                       allowed: np.ndarray | None) -> np.ndarray:
    """Stage 1 over the heavy terms' `n_postings` heaviest postings: the `window` best live (and allowed) rows
    by their partial scores, accumulated in a reused buffer so no pass touches every row."""
    import torch

    lists = impact_lists(index, n_postings)
    n = index._built_rows
    buf = index.__dict__.get("_stage1_buffer")
    if buf is None or buf.numel() != n:
        buf = index._stage1_buffer = torch.zeros(n, dtype=torch.float32)
    docs_t, vals_t = torch.from_numpy(lists.docs), torch.from_numpy(lists.vals)
    starts, ends = lists.offsets[terms].tolist(), lists.offsets[terms + 1].tolist()
    for s, e, w in zip(starts, ends, weights.tolist()):
        if e > s:
            buf.index_add_(0, docs_t[s:e], vals_t[s:e], alpha=w)
    touched = np.concatenate([lists.docs[s:e] for s, e in zip(starts, ends)]) if starts else np.zeros(0, np.int32)
    touched.sort()
    rows = touched[np.concatenate(([True], touched[1:] != touched[:-1]))] if touched.size else touched
    values = buf.numpy()
    scores = values[rows].copy()
    values[rows] = 0  # the buffer is all zeros again for the next query
    live = ~index._dead[rows] if index._n_dead else np.ones(rows.size, dtype=bool)
    if allowed is not None:
        live &= allowed[rows]
    return top_k(rows[live], scores[live], window)[0]


class ForwardStore:
    """Rows' vectors document-major: `indptr` (int64, rows + 1), `terms` (int32), `vals` (float32)."""

    def __init__(self, indptr: np.ndarray | None = None, terms: np.ndarray | None = None,
                 vals: np.ndarray | None = None):
        self.indptr = indptr if indptr is not None else np.zeros(1, dtype=np.int64)
        self.terms = terms if terms is not None else np.zeros(0, dtype=np.int32)
        self.vals = vals if vals is not None else np.zeros(0, dtype=np.float32)
        self._pending: list[sp.csr_matrix] = []

    @classmethod
    def from_postings(cls, offsets: np.ndarray, docs: np.ndarray, vals: np.ndarray, n_rows: int) -> "ForwardStore":
        """The forward store of term-major postings (one transpose)."""
        csc = sp.csc_matrix((vals, docs, offsets), shape=(n_rows, offsets.size - 1))
        csr = csc.tocsr()
        csr.sort_indices()
        return cls(csr.indptr.astype(np.int64), csr.indices.astype(np.int32), csr.data.astype(np.float32))

    @property
    def n_rows(self) -> int:
        return self.indptr.size - 1 + sum(c.shape[0] for c in self._pending)

    @property
    def nbytes(self) -> int:
        self._fold()
        return int(self.indptr.nbytes + self.terms.nbytes + self.vals.nbytes)

    def append(self, chunk: sp.csr_matrix) -> None:
        """Add rows at the end (a CSR chunk with sorted indices; folded in on the next read)."""
        self._pending.append(chunk)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, terms, vals) over every row."""
        self._fold()
        return self.indptr, self.terms, self.vals

    def _fold(self) -> None:
        if not self._pending:
            return
        chunks, self._pending = self._pending, []
        base = int(self.indptr[-1])
        ptrs = [self.indptr]
        for c in chunks:
            ptrs.append(c.indptr[1:].astype(np.int64) + base)
            base += c.nnz
        self.indptr = np.concatenate(ptrs)
        self.terms = np.concatenate([self.terms, *(c.indices.astype(np.int32, copy=False) for c in chunks)])
        self.vals = np.concatenate([self.vals, *(c.data.astype(np.float32, copy=False) for c in chunks)])

    def compact(self, keep: np.ndarray) -> None:
        """Keep the rows where the bool mask `keep` holds, in order."""
        self._fold()
        lengths = np.diff(self.indptr)
        entries = np.repeat(keep, lengths)
        self.terms, self.vals = self.terms[entries], self.vals[entries]
        self.indptr = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(lengths[keep], out=self.indptr[1:])

    def row(self, r: int) -> SparseVector:
        self._fold()
        s, e = int(self.indptr[r]), int(self.indptr[r + 1])
        return SparseVector(np.array(self.terms[s:e]), np.array(self.vals[s:e]))

    def rescore(self, rows: np.ndarray, q_dense: np.ndarray) -> np.ndarray:
        """Exact float32 scores of `rows` for a query given densely over the vocabulary (float32): each the
        sequential float32 sum in ascending term order of q_w * d_w, as the postings' exact search adds them."""
        self._fold()
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        if rows.size == 0 or int(lengths.sum()) == 0:
            return np.zeros(rows.size, dtype=np.float32)
        pos = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        pos += np.arange(pos.size, dtype=np.int64)
        prod = q_dense[self.terms[pos]] * self.vals[pos]  # float32 products, zero off the query
        hit = prod != 0
        owner = np.repeat(np.arange(rows.size), lengths)[hit]
        prod = prod[hit]
        if prod.size == 0:
            return np.zeros(rows.size, dtype=np.float32)
        counts = np.bincount(owner, minlength=rows.size)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        table = np.zeros((rows.size, int(counts.max())), dtype=np.float32)
        table[owner, np.arange(prod.size) - first[owner]] = prod
        return np.cumsum(table, axis=1, dtype=np.float32)[:, -1]  # cumsum adds in order; 0 adds nothing
