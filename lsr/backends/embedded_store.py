"""On-disk layout of the embedded index: postings as .npy (memory-mappable), ids + metadata as parquet.

A saved index is a directory holding `index.json` (format, version, sizes, file names), `offsets.npy`
(int64, vocab+1), `docs.npy` (int32 doc rows, term-major), `vals.npy` (float32 weights) and
`docs.parquet` (columns `id`, `metadata` as JSON strings). Every file is written under a temporary
name and renamed, so a file that an open index has memory-mapped is never truncated.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "lsr-embedded-index"
FORMAT_VERSION = 1
MANIFEST = "index.json"
DENSE_FILE = "dense.npy"  # optional: the dense vectors of re-ranking and hybrid search, row-aligned
FILES = {"offsets": "offsets.npy", "docs": "docs.npy", "vals": "vals.npy", "table": "docs.parquet"}


@dataclass
class StoredPostings:
    """What a saved index holds: term-major postings over rows 0..n-1 and each row's id and metadata."""

    vocab_size: int
    offsets: np.ndarray  # int64, (vocab_size + 1,)
    docs: np.ndarray  # int32 row numbers, ascending within each term
    vals: np.ndarray  # float32 weights
    ids: "pa.Array | Sequence[str]"  # read back as an Arrow string array (no Python str per row)
    metadata: list[str | None]  # JSON strings
    provenance: dict | None = None  # what built the index (`lsr.provenance`)
    dense: np.ndarray | None = None  # float32 (rows, dim) dense vectors kept beside, when the index has them


def _replace_atomically(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_postings(directory: str | Path, stored: StoredPostings) -> None:
    """Write `stored` into `directory` (created if needed); the manifest is written last."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for key in ("offsets", "docs", "vals"):
        arr = np.ascontiguousarray(getattr(stored, key))
        _replace_atomically(path / FILES[key], lambda tmp, arr=arr: _save_npy(tmp, arr))
    if stored.dense is not None:
        _replace_atomically(path / DENSE_FILE, lambda tmp: _save_npy(tmp, np.ascontiguousarray(stored.dense)))
    ids = stored.ids if isinstance(stored.ids, (pa.Array, pa.ChunkedArray)) else pa.array(stored.ids, type=pa.string())
    table = pa.table({"id": ids.cast(pa.string()),
                      "metadata": pa.array(stored.metadata, type=pa.string())})
    _replace_atomically(path / FILES["table"], lambda tmp: pq.write_table(table, tmp))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vocab_size": stored.vocab_size,
        "num_docs": len(stored.ids),
        "num_postings": int(stored.docs.size),
        "files": FILES,
        "provenance": stored.provenance,
    }
    if stored.dense is not None:
        manifest["dense"] = {"file": DENSE_FILE, "dim": int(stored.dense.shape[1])}
    _replace_atomically(path / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2)))


def read_postings(directory: str | Path, mmap: bool = True) -> StoredPostings:
    """Read a directory written by `write_postings`; with `mmap` docs and vals are mapped read-only."""
    import pyarrow.parquet as pq

    path = Path(directory)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"No {MANIFEST} in {path}; is this a saved EmbeddedIndex?")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{manifest_path} has format {manifest.get('format')!r} v{manifest.get('format_version')}, "
            f"expected {FORMAT!r} v{FORMAT_VERSION}."
        )
    files = manifest["files"]
    vocab_size = int(manifest["vocab_size"])
    mode = "r" if mmap else None
    offsets = np.load(path / files["offsets"]).astype(np.int64, copy=False)
    docs = np.load(path / files["docs"], mmap_mode=mode)
    vals = np.load(path / files["vals"], mmap_mode=mode)
    table = pq.read_table(path / files["table"], columns=["id", "metadata"])
    ids = table.column("id").combine_chunks()
    metadata = table.column("metadata").to_pylist()
    n, nnz = int(manifest["num_docs"]), int(manifest["num_postings"])
    if offsets.shape != (vocab_size + 1,) or int(offsets[-1]) != nnz or docs.shape != (nnz,) or vals.shape != (nnz,):
        raise ValueError(f"Postings in {path} do not match the manifest (vocab {vocab_size}, {nnz} postings).")
    if len(ids) != n or docs.dtype != np.int32 or vals.dtype != np.float32:
        raise ValueError(f"Ids or posting dtypes in {path} do not match the manifest.")
    dense = None
    if manifest.get("dense"):
        dense = np.load(path / manifest["dense"]["file"], mmap_mode=mode)
        if dense.shape != (n, int(manifest["dense"]["dim"])) or dense.dtype != np.float32:
            raise ValueError(f"{path / manifest['dense']['file']} does not match the manifest "
                             f"({n} rows of {manifest['dense']['dim']} float32).")
    return StoredPostings(vocab_size, offsets, docs, vals, ids, metadata, manifest.get("provenance"), dense)


def _save_npy(tmp: Path, arr: np.ndarray) -> None:
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
