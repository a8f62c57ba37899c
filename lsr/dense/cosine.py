"""Exact cosine similarity between two sets of vectors."""

from __future__ import annotations

import numpy as np

from lsr.errors import InvalidInputError
from lsr.vectors import l2_normalise


def cosine_scores(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """(n_queries x n_docs) cosine similarities, float32; both inputs are L2-normalised here."""
    q = l2_normalise(np.atleast_2d(queries), "queries")
    d = l2_normalise(np.atleast_2d(docs), "documents")
    if q.shape[1] != d.shape[1]:
        raise InvalidInputError(f"Queries have dimension {q.shape[1]} but documents {d.shape[1]}; map them first.")
    return q @ d.T
