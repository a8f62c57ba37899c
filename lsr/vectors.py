"""Small helpers on dense vectors and sequences: row normalisation and batching."""

from __future__ import annotations

from typing import Iterator, Sequence, TypeVar

import numpy as np

from lsr.errors import InvalidInputError

T = TypeVar("T")


def l2_normalise(x: np.ndarray, name: str = "vectors") -> np.ndarray:
    """Row-wise L2 normalisation; zero or non-finite rows are an error naming `name`."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise InvalidInputError(f"{name}: rows {rows} are zero or contain NaN/inf and cannot be normalised.")
    return x / norms


def batches(items: Sequence[T], batch_size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `batch_size` items."""
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}.")
    for start in range(0, len(items), batch_size):
        yield items[start:start + batch_size]
