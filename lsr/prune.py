"""Pruning rules for sparse vectors, with the semantics of OpenSearch's prune types.

- ``top_k``: keep the ``k`` heaviest tokens (ties broken by token id).
- ``max_ratio``: keep tokens whose weight is at least ``ratio`` x the heaviest weight.
- ``alpha_mass``: keep the heaviest tokens until their cumulative weight reaches ``alpha`` x the total.
- ``abs_value``: keep tokens whose weight is at least ``value``.

Used on queries before they reach a backend (OpenSearch rejects more than 1,024 clauses), and
available to anyone who wants cheaper queries.
"""

from __future__ import annotations

import numpy as np

from lsr.errors import InvalidInputError
from lsr.sparse import SparseVector
from lsr.topk import top_k

PRUNE_TYPES = ("top_k", "max_ratio", "alpha_mass", "abs_value")


def prune(vector: SparseVector, prune_type: str, value: float) -> SparseVector:
    """Apply one pruning rule; the result keeps the surviving tokens' weights unchanged."""
    if prune_type not in PRUNE_TYPES:
        raise InvalidInputError(f"Unknown prune type {prune_type!r}; choose one of {', '.join(PRUNE_TYPES)}.")
    if vector.nnz == 0:
        return vector
    w = vector.weights
    if prune_type == "top_k":
        if value < 1 or int(value) != value:
            raise InvalidInputError(f"top_k pruning needs a positive integer k, got {value}.")
        kept, _ = top_k(np.arange(w.size), w, int(value))  # ids are sorted, so position order is id order
        keep = np.zeros(w.size, dtype=bool)
        keep[kept] = True
    elif prune_type == "max_ratio":
        _check_unit(prune_type, value)
        keep = w >= value * w.max()
    elif prune_type == "alpha_mass":
        _check_unit(prune_type, value)
        order = np.lexsort((vector.ids, -w))
        mass = np.cumsum(w[order].astype(np.float64))
        # keep every token up to and including the one that reaches alpha of the mass
        n_keep = int(np.searchsorted(mass, value * mass[-1], side="left")) + 1
        keep = np.zeros(w.size, dtype=bool)
        keep[order[:n_keep]] = True
    else:
        if value < 0:
            raise InvalidInputError(f"abs_value pruning needs a non-negative threshold, got {value}.")
        keep = w >= value
    return SparseVector(vector.ids[keep], w[keep])


def cap_terms(vector: SparseVector, max_terms: int) -> SparseVector:
    """Keep at most `max_terms` tokens (the heaviest): the clause-limit rule, applied after any prune."""
    return vector if vector.nnz <= max_terms else prune(vector, "top_k", max_terms)


def _check_unit(prune_type: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise InvalidInputError(f"{prune_type} pruning needs a ratio in [0, 1], got {value}.")
