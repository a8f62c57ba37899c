"""The text-encoder interface shared by frozen encoders."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class TextEncoder(Protocol):
    """Encodes texts into L2-normalised float32 vectors of a fixed dimension."""

    dim: int

    def encode_texts(self, texts: Sequence[str], batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
        ...


def l2_normalise(x: np.ndarray, name: str = "vectors") -> np.ndarray:
    """Row-wise L2 normalisation; zero or non-finite rows are an error naming `name`."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"{name}: rows {rows} are zero or contain NaN/inf and cannot be normalised.")
    return x / norms
