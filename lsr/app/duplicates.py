"""Near-duplicate photos: the same picture resized, re-encoded, slightly cropped, rotated by EXIF or made
brighter, grouped so that clean-up can keep one of each group (`lsr duplicates`) and the search page
can show one per group with a count.

Groups come from the perceptual hash each photo's metadata holds (``phash``, `lsr.images.photo_meta`):
two photos are near-duplicates when their hashes differ in at most `max_distance` of 64 bits, and
groups are the connected components of that relation. The hash was chosen over the sparse and the dense
(encoder feature) vectors by measurement on variants of scikit-image's sample photos
(``benchmarks/bench_photos.py``, ``results/photo_duplicates.json``): label-token vectors put any two photos
of one kind of thing together (two cats), the hash only the same picture. Pairs are compared in blocks
with numpy (about n^2 / 2 XORs: a few seconds at 30,000 photos).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lsr.app.specs import IndexSpec
from lsr.errors import InvalidInputError

if TYPE_CHECKING:
    from lsr.backends.base import SparseBackend
    from lsr.backends.opensearch.connection import Connection

from lsr.images.photos import DEFAULT_MAX_DISTANCE, collapse_hits  # noqa: F401 - re-exported


@dataclass(frozen=True)
class Photo:
    id: str
    path: str | None
    file_size: int | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class DuplicateGroup:
    """Photos that are near-duplicates of each other, largest file first (the one to keep, most often)."""

    photos: tuple[Photo, ...]

    @property
    def reclaimable(self) -> int:
        """Bytes freed by keeping only the first photo."""
        return sum(p.file_size or 0 for p in self.photos[1:])


def hash_ints(hashes: Sequence[str]) -> np.ndarray:
    return np.array([int(h, 16) for h in hashes], dtype=np.uint64)


def group_hashes(hashes: Sequence[str], max_distance: int = DEFAULT_MAX_DISTANCE, block: int = 256) -> list[list[int]]:
    """Groups (lists of positions, each of two or more) of hashes within `max_distance` bits, transitively."""
    if not 0 <= max_distance < 64:
        raise InvalidInputError(f"max_distance is a number of bits from 0 to 63, got {max_distance}.")
    values = hash_ints(hashes)
    parent = np.arange(values.size)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for lo in range(0, values.size, block):
        part = values[lo:lo + block]
        distances = np.bitwise_count(part[:, None] ^ values[None, lo:])  # this block against itself and later ones
        rows, cols = np.nonzero(distances <= max_distance)
        for r, c in zip(rows.tolist(), cols.tolist()):
            a, b = find(lo + r), find(lo + c)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(values.size):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def photos_of(index: "SparseBackend", ids: Sequence[str]) -> tuple[list[Photo], list[str], list[str]]:
    """(photos with a hash, their hashes, ids without one: indexed before hashes existed)."""
    photos, hashes, unhashed = [], [], []
    for doc_id in ids:
        try:
            meta: dict[str, Any] = index.metadata(doc_id)
        except KeyError:
            continue
        if not meta.get("phash"):
            unhashed.append(doc_id)
            continue
        photos.append(Photo(doc_id, meta.get("path"), meta.get("file_size"), meta.get("width"), meta.get("height")))
        hashes.append(meta["phash"])
    return photos, hashes, unhashed


def find_duplicates(address: "str | Path | IndexSpec", *, state: str | Path | None = None,
                    connection: "Connection | None" = None,
                    max_distance: int = DEFAULT_MAX_DISTANCE) -> tuple[list[DuplicateGroup], list[str]]:
    """The near-duplicate groups of a folder index (largest group first) and the ids that have no hash
    yet (re-run `lsr index-images` to hash them). The documents are those of the folder's manifest."""
    from lsr.app.folders import MANIFEST, state_dir
    from lsr.app.open import open_index
    from lsr.images.manifest import Manifest

    spec = IndexSpec.parse(address)
    where = state_dir(spec, state, connection)
    if not (where / MANIFEST).is_file():
        raise InvalidInputError(f"No folder manifest in {where}: `lsr duplicates` works on an index built by "
                                f"`lsr index-images FOLDER --index {spec.address}` (give --state if it lives elsewhere).")
    ids = sorted(Manifest.load(where / MANIFEST).entries)
    index = open_index(spec, connection=connection)
    try:
        photos, hashes, unhashed = photos_of(index, ids)
    finally:
        index.close()
    groups = [DuplicateGroup(tuple(sorted((photos[i] for i in g), key=lambda p: (-(p.file_size or 0), p.id))))
              for g in group_hashes(hashes, max_distance)]
    groups.sort(key=lambda g: (-len(g.photos), g.photos[0].id))
    return groups, unhashed


__all__ = ["DEFAULT_MAX_DISTANCE", "DuplicateGroup", "Photo", "collapse_hits", "find_duplicates", "group_hashes"]
