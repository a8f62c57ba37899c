"""On-disk layout of the embedded index: postings as .npy (memory-mappable), ids + metadata as parquet.

A saved index is a directory holding `index.json` (format, version, generation, sizes, file names and
each file's byte count and CRC-32), `offsets-G.npy` (int64, vocab+1), `docs-G.npy` (int32 doc rows,
term-major), `vals-G.npy` (float32 weights), `docs-G.parquet` (columns `id`, `metadata` as JSON strings)
and, when kept, `dense-G.npy` and the forward store (`fwd_indptr-G.npy` int64, `fwd_terms-G.npy` int32,
`fwd_vals-G.npy` float32: each row's vector, document-major), G being the save's generation. A save writes a new generation and renames
the manifest into place last, so an interrupted save leaves the previous index intact, and a file that an
open index has memory-mapped is never truncated.
"""

from __future__ import annotations

import errno
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lsr.errors import InvalidInputError, LsrError, MissingFileError

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "lsr-embedded-index"
FORMAT_VERSION = 2  # 2: generation-named files with their sizes and CRC-32 in the manifest; 1 still reads
MANIFEST = "index.json"
DENSE_FILE = "dense.npy"  # optional: the dense vectors of re-ranking and hybrid search, row-aligned
FILES = {"offsets": "offsets.npy", "docs": "docs.npy", "vals": "vals.npy", "table": "docs.parquet"}
FORWARD_FILES = {"fwd_indptr": "fwd_indptr.npy", "fwd_terms": "fwd_terms.npy", "fwd_vals": "fwd_vals.npy"}
FORWARD_DTYPES = {"fwd_indptr": np.int64, "fwd_terms": np.int32, "fwd_vals": np.float32}


class DiskFullError(LsrError, OSError):
    """A save ran out of space; the previous index is intact (the message says what to do)."""


class CorruptIndexError(InvalidInputError):
    """A stored file does not match what the manifest says (truncated, changed or missing)."""


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
    forward: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (indptr, terms, vals) document-major


def _replace_atomically(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            crc = zlib.crc32(block, crc)
    return crc


def _generation(path: Path) -> int:
    """The next generation number: one more than the manifest's, so a save never overwrites live files."""
    try:
        return int(json.loads((path / MANIFEST).read_text()).get("generation", 0)) + 1
    except (OSError, ValueError, AttributeError):
        return 1


def _named(name: str, generation: int) -> str:
    stem, dot, ext = name.partition(".")
    return f"{stem}-{generation}{dot}{ext}"


def write_postings(directory: str | Path, stored: StoredPostings) -> None:
    """Write `stored` into `directory` (created if needed).

    Crash-safe: every file goes under a new generation's names, and the manifest, renamed into place last,
    is the switch. A save that fails part-way (an error, a full disk, a killed process) leaves the previous
    manifest and its files, so the previous index, intact; the files of older generations are removed after
    the switch (an open index keeps reading the ones it has memory-mapped). A full disk raises
    `DiskFullError` and removes the failed generation's files.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    generation = _generation(path)
    try:
        manifest = _write_generation(path, generation, stored)
    except BaseException as exc:
        for name in path.iterdir():  # this generation's files are garbage: give their space back
            if _is_store_file(name.name) and name.name in _generation_names(generation):
                name.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(exc.errno, f"No space left on the device of {path} while saving the index "
                                f"({exc.filename or 'a store file'}); the previous index there is intact and "
                                "loads as before, and this writer keeps its changes: free some space and commit "
                                "again.") from exc
        raise
    live = set(manifest["checksums"])
    for old in path.iterdir():  # earlier generations (and version-1 names) are garbage now
        if old.name not in live and old.name != MANIFEST and _is_store_file(old.name):
            old.unlink(missing_ok=True)


def _generation_names(generation: int) -> set[str]:
    return {_named(name, generation) for name in (*FILES.values(), DENSE_FILE, *FORWARD_FILES.values())}


def _write_generation(path: Path, generation: int, stored: StoredPostings) -> dict:
    """Write one generation's files and switch the manifest to them; returns the manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = {key: _named(name, generation) for key, name in FILES.items()}
    for key in ("offsets", "docs", "vals"):
        arr = np.ascontiguousarray(getattr(stored, key))
        _replace_atomically(path / names[key], lambda tmp, arr=arr: _save_npy(tmp, arr))
    if stored.dense is not None:
        names["dense"] = _named(DENSE_FILE, generation)
        _replace_atomically(path / names["dense"], lambda tmp: _save_npy(tmp, np.ascontiguousarray(stored.dense)))
    forward = {}
    if stored.forward is not None:
        for key, arr in zip(FORWARD_FILES, stored.forward):
            forward[key] = _named(FORWARD_FILES[key], generation)
            arr = np.ascontiguousarray(arr, dtype=FORWARD_DTYPES[key])
            _replace_atomically(path / forward[key], lambda tmp, arr=arr: _save_npy(tmp, arr))
    ids = stored.ids if isinstance(stored.ids, (pa.Array, pa.ChunkedArray)) else pa.array(stored.ids, type=pa.string())
    table = pa.table({"id": ids.cast(pa.string()),
                      "metadata": pa.array(stored.metadata, type=pa.string())})
    _replace_atomically(path / names["table"], lambda tmp: pq.write_table(table, tmp))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": generation,
        "vocab_size": stored.vocab_size,
        "num_docs": len(stored.ids),
        "num_postings": int(stored.docs.size),
        "files": names,
        "checksums": {name: {"bytes": (path / name).stat().st_size, "crc32": _crc32(path / name)}
                      for name in (*names.values(), *forward.values())},
        "provenance": stored.provenance,
    }
    if stored.dense is not None:
        manifest["dense"] = {"file": names.pop("dense"), "dim": int(stored.dense.shape[1])}
    if forward:
        manifest["forward"] = forward
    _replace_atomically(path / MANIFEST, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2)))
    return manifest


def _is_store_file(name: str) -> bool:
    """A data file of some generation (``docs-3.npy``), or of a version-1 index (``docs.npy``)."""
    return re.fullmatch(r"(offsets|docs|vals|dense|fwd_indptr|fwd_terms|fwd_vals)(-\d+)?\.(npy|parquet)", name) is not None


def _verify(path: Path, manifest: dict, verify: bool) -> None:
    for name, expected in (manifest.get("checksums") or {}).items():
        file = path / name
        if not file.is_file():
            raise CorruptIndexError(f"{file} is missing: the index in {path} is incomplete; restore it from a "
                                    "backup or rebuild it (`lsr index`).")
        size = file.stat().st_size
        if size != expected["bytes"]:
            raise CorruptIndexError(f"{file} has {size} bytes, the manifest {expected['bytes']}: the file is "
                                    "truncated or was replaced; restore it or rebuild the index.")
        if verify and _crc32(file) != expected["crc32"]:
            raise CorruptIndexError(f"{file} fails its CRC-32 check: the file is corrupted; restore it or "
                                    "rebuild the index.")


def read_postings(directory: str | Path, mmap: bool = True, verify: bool = True) -> StoredPostings:
    """Read a directory written by `write_postings`; with `mmap` docs and vals are mapped read-only.

    Every file is checked against the manifest (size, and CRC-32 unless `verify` is False): a truncated or
    corrupted file raises `CorruptIndexError` naming it, never a wrong result. A writer that commits while
    this reads removes the generation being read: the read then starts again on the new manifest, so a
    reader gets the old or the new index, never an error.
    """
    path = Path(directory)
    for attempt in range(READ_ATTEMPTS):
        text = _manifest_text(path)
        try:
            return _read_generation(path, _parse_manifest(path, text), mmap, verify)
        except (CorruptIndexError, FileNotFoundError):  # a file named by the manifest is gone or damaged
            if attempt + 1 == READ_ATTEMPTS or _manifest_text(path) == text:
                raise  # damage, not a concurrent commit
    raise AssertionError("unreachable")


READ_ATTEMPTS = 5


def _manifest_text(path: Path) -> str:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise MissingFileError(f"No {MANIFEST} in {path}; is this a saved EmbeddedIndex?")
    return manifest_path.read_text()


def _parse_manifest(path: Path, text: str) -> dict:
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise CorruptIndexError(f"{manifest_path} is not valid JSON ({exc}); restore it or rebuild the index.") from None
    if manifest.get("format") != FORMAT:
        raise InvalidInputError(f"{manifest_path} has format {manifest.get('format')!r}, expected {FORMAT!r}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InvalidInputError(f"{manifest_path} was written by a newer lsr (format v{version}; this one reads up to "
                         f"v{FORMAT_VERSION}): upgrade lsr to read it.")
    return manifest


def _read_generation(path: Path, manifest: dict, mmap: bool, verify: bool) -> StoredPostings:
    """The files one manifest names, checked against it."""
    import pyarrow.parquet as pq

    _verify(path, manifest, verify)
    files = manifest["files"]
    vocab_size = int(manifest["vocab_size"])
    mode = "r" if mmap else None

    def load(name: str, **kwargs):
        try:
            return np.load(path / name, **kwargs)
        except (OSError, ValueError, EOFError) as exc:
            raise CorruptIndexError(f"{path / name} cannot be read ({exc}); restore it or rebuild the index.") from None

    offsets = load(files["offsets"]).astype(np.int64, copy=False)
    docs = load(files["docs"], mmap_mode=mode)
    vals = load(files["vals"], mmap_mode=mode)
    try:
        table = pq.read_table(path / files["table"], columns=["id", "metadata"])
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise CorruptIndexError(f"{path / files['table']} cannot be read ({exc}); restore it or rebuild the index.") from None
    ids = table.column("id").combine_chunks()
    metadata = table.column("metadata").to_pylist()
    n, nnz = int(manifest["num_docs"]), int(manifest["num_postings"])
    if offsets.shape != (vocab_size + 1,) or int(offsets[-1]) != nnz or docs.shape != (nnz,) or vals.shape != (nnz,):
        raise CorruptIndexError(f"Postings in {path} do not match the manifest (vocab {vocab_size}, {nnz} postings).")
    if len(ids) != n or docs.dtype != np.int32 or vals.dtype != np.float32:
        raise CorruptIndexError(f"Ids or posting dtypes in {path} do not match the manifest.")
    dense = None
    if manifest.get("dense"):
        dense = load(manifest["dense"]["file"], mmap_mode=mode)
        if dense.shape != (n, int(manifest["dense"]["dim"])) or dense.dtype != np.float32:
            raise CorruptIndexError(f"{path / manifest['dense']['file']} does not match the manifest "
                                    f"({n} rows of {manifest['dense']['dim']} float32).")
    forward = None
    if manifest.get("forward"):
        forward = tuple(load(manifest["forward"][key], mmap_mode=mode) for key in FORWARD_FILES)
        indptr, terms, fvals = forward
        if (indptr.shape != (n + 1,) or terms.shape != (nnz,) or fvals.shape != (nnz,) or int(indptr[-1]) != nnz
                or tuple(a.dtype for a in forward) != tuple(map(np.dtype, FORWARD_DTYPES.values()))):
            raise CorruptIndexError(f"The forward store in {path} does not match the manifest ({n} rows, {nnz} entries).")
    return StoredPostings(vocab_size, offsets, docs, vals, ids, metadata, manifest.get("provenance"), dense, forward)


def _save_npy(tmp: Path, arr: np.ndarray) -> None:
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
    except OSError as exc:
        if exc.errno is None and _free_bytes(tmp.parent) < arr.nbytes:  # numpy's short write names no errno
            raise OSError(errno.ENOSPC, f"No space left on device ({exc})", str(tmp)) from exc
        raise


def _free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize
