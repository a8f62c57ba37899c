"""Dense vectors kept beside a sparse index: the frozen model's global vectors, one per document.

Two-stage re-ranking and hybrid fusion score documents by cosine with the query's dense vector. A
backend that keeps them decides their dimension on its first write (OpenSearch: a ``knn_vector``
field in the mapping; embedded: `DenseRows`, rows aligned with the index's rows) and every later write
must bring vectors of that dimension. Vectors are stored L2-normalised, so a dot product is a cosine.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lsr.errors import InvalidInputError


def check_dense(dense: object, n: int, dim: int | None) -> np.ndarray:
    """`dense` as a float32 (n, dim) array; a whole-call error when the shape or dimension is wrong."""
    arr = np.asarray(dense, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InvalidInputError(f"dense must be one vector per document: shape ({n}, dim), got {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise InvalidInputError(f"This index keeps {dim}-d dense vectors; got {arr.shape[1]}-d. Encode with the "
                         "dense model that built the index.")
    return arr


def dense_problem(row: np.ndarray) -> str:
    """Why a dense vector cannot be stored, or "" when it can."""
    if not np.all(np.isfinite(row)):
        return "the dense vector has NaN or inf values"
    if not np.any(row):
        return "the dense vector is all zeros, so it has no direction to compare"
    return ""


def normalise_rows(arr: np.ndarray) -> np.ndarray:
    return (arr / np.linalg.norm(arr, axis=1, keepdims=True)).astype(np.float32)


class DenseRows:
    """Row-aligned dense vectors of an embedded index (appended with its rows, compacted with them)."""

    def __init__(self, dim: int, matrix: np.ndarray | None = None):
        self.dim = int(dim)
        self._chunks: list[np.ndarray] = [] if matrix is None else [matrix]

    @property
    def matrix(self) -> np.ndarray:
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate(self._chunks) if self._chunks else np.zeros((0, self.dim), np.float32)]
        return self._chunks[0]

    def append(self, rows: np.ndarray) -> None:
        self._chunks.append(normalise_rows(rows))

    def compact(self, keep: np.ndarray) -> None:
        self._chunks = [np.ascontiguousarray(self.matrix[keep])]

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[np.asarray(rows, dtype=np.int64)], dtype=np.float32)

    @property
    def nbytes(self) -> int:
        return int(sum(c.nbytes for c in self._chunks))
