"""On-disk cache of encoder features so that re-indexing never re-encodes an unchanged image.

Layout: `<cache_dir>/<encoder name>/part-NNNNNN.parquet`, one part per written batch, columns
`id, size, mtime_ns, width, height, vector` (a fixed-size float32 list) and `phash` (the perceptual hash
of the pixels, `lsr.images.photo_meta`; parts written before it existed have none, and the indexer then
hashes the image without encoding it). An entry is a hit only when id,
file size and mtime all match; the encoder name keys the directory. Only the keys are held in memory;
vectors are read back from the one part that holds them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from lsr.errors import InvalidInputError

logger = logging.getLogger(__name__)


class Cached(NamedTuple):
    vector: np.ndarray
    width: int
    height: int
    phash: str | None = None


class FeatureCache:
    """Features of (id, size, mtime_ns) keys for one encoder."""

    def __init__(self, cache_dir: str | Path, encoder_name: str, dim: int):
        import pyarrow.parquet as pq

        self.dir = Path(cache_dir) / _safe_name(encoder_name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dim = int(dim)
        self._where: dict[str, tuple[int, int, Path, int]] = {}  # id -> (size, mtime_ns, part, row)
        self._next_part = 0
        for part in sorted(self.dir.glob("part-*.parquet")):
            self._next_part = max(self._next_part, int(part.stem.split("-")[1]) + 1)
            try:
                table = pq.read_table(part, columns=["id", "size", "mtime_ns"])
                dims = pq.read_schema(part).field("vector").type.list_size
            except (OSError, KeyError, ValueError) as exc:
                logger.warning("ignoring unreadable cache part %s: %s", part, exc)
                continue
            if dims != self.dim:
                logger.warning("ignoring cache part %s: vectors of %s dims, expected %d", part, dims, self.dim)
                continue
            cols = table.to_pydict()
            for row, (doc_id, size, mtime) in enumerate(zip(cols["id"], cols["size"], cols["mtime_ns"])):
                self._where[doc_id] = (size, mtime, part, row)  # later parts win

    def __len__(self) -> int:
        return len(self._where)

    def get(self, keys: Sequence[tuple[str, int, int]]) -> dict[int, Cached]:
        """Cached entries of the keys that hit, as {position in `keys`: (vector, width, height)}."""
        import pyarrow.parquet as pq

        by_part: dict[Path, list[tuple[int, int]]] = {}
        for pos, (doc_id, size, mtime) in enumerate(keys):
            hit = self._where.get(doc_id)
            if hit is not None and hit[0] == size and hit[1] == mtime:
                by_part.setdefault(hit[2], []).append((pos, hit[3]))
        out: dict[int, Cached] = {}
        for part, wanted in by_part.items():
            try:
                names = pq.read_schema(part).names
                table = pq.read_table(part, columns=["width", "height", "vector"] + (["phash"] if "phash" in names else []))
            except OSError as exc:
                logger.warning("cache part %s unreadable, re-encoding its images: %s", part, exc)
                continue
            flat = table.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, self.dim)
            widths, heights = table.column("width").to_pylist(), table.column("height").to_pylist()
            hashes = table.column("phash").to_pylist() if "phash" in table.column_names else [None] * len(widths)
            for pos, row in wanted:
                out[pos] = Cached(np.array(flat[row], dtype=np.float32), widths[row], heights[row], hashes[row])
        return out

    def put(self, keys: Sequence[tuple[str, int, int]], vectors: np.ndarray, sizes: Sequence[tuple[int, int]],
            phashes: Sequence[str | None] | None = None) -> None:
        """Append one part with these keys, vectors, (width, height) image sizes and perceptual hashes."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(keys), self.dim) or len(sizes) != len(keys):
            raise InvalidInputError(f"Expected {len(keys)} vectors of {self.dim} dims and sizes, got shape {vectors.shape} "
                             f"and {len(sizes)} sizes.")
        if not keys:
            return
        values = pa.array(vectors.reshape(-1), type=pa.float32())
        table = pa.table({
            "id": pa.array([k[0] for k in keys], type=pa.string()),
            "size": pa.array([k[1] for k in keys], type=pa.int64()),
            "mtime_ns": pa.array([k[2] for k in keys], type=pa.int64()),
            "width": pa.array([int(s[0]) for s in sizes], type=pa.int32()),
            "height": pa.array([int(s[1]) for s in sizes], type=pa.int32()),
            "vector": pa.FixedSizeListArray.from_arrays(values, self.dim),
            "phash": pa.array(list(phashes) if phashes is not None else [None] * len(keys), type=pa.string()),
        })
        part = self.dir / f"part-{self._next_part:06d}.parquet"
        tmp = part.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        tmp.replace(part)
        self._next_part += 1
        for row, (doc_id, size, mtime) in enumerate(keys):
            self._where[doc_id] = (size, mtime, part, row)


def _safe_name(name: str) -> str:
    """A directory name for an encoder name (letters, digits, '.', '_', '-')."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    if not safe:
        raise InvalidInputError(f"Encoder name {name!r} gives an empty cache directory name.")
    return safe
