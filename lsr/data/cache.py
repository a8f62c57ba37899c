"""On-disk cache of encoded vectors, so re-runs never re-encode."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """`LSR_CACHE` if set, else `~/.cache/lsr`."""
    return Path(os.environ.get("LSR_CACHE", Path.home() / ".cache" / "lsr"))


def cache_key(*parts: object) -> str:
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """A content hash of a file: a cache keyed on it survives copies and touched timestamps."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def save_ragged(path: Path, arrays: list[np.ndarray]) -> None:
    """Save a list of int32 arrays as offsets + values in one .npz."""
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([a.size for a in arrays])
    values = np.concatenate(arrays).astype(np.int32) if arrays else np.zeros(0, np.int32)
    np.savez(path, offsets=offsets, values=values)


def load_ragged(path: Path) -> list[np.ndarray]:
    with np.load(path) as z:
        offsets, values = z["offsets"], z["values"]
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write to a temporary name, then rename, so an interrupted run leaves no half file."""
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
