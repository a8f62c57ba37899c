"""Index a folder of images into any `SparseBackend`, streaming, incrementally and idempotently.

The folder is walked lazily and processed `batch_size` files at a time; only one batch of decoded
images is ever in memory. A file whose (size, mtime) and encoder/model signature match the manifest is
left alone; a new or changed one is (re)encoded and written under its id (the relative POSIX path), which
replaces the old vector, never duplicates it. Features come from the on-disk cache when the file is
unchanged there. Unreadable files are reported with a reason (and a stale old version is removed);
`prune=True` deletes documents whose files are gone.

A new file whose size and modification time (to the nanosecond) match a manifest entry whose own file is
gone is a move: its stored vector and metadata are re-written under the new id (path updated) and the old
id deleted, without decoding or encoding the image. Each document's metadata holds what a photo is
(`lsr.images.photo_meta`: date taken, camera, orientation, file type, perceptual hash) for filters and
duplicate groups. The journal (`lsr.images.journal`) notes every id before it is written, so a run killed
at any moment is finished by the next one: nothing lost, nothing twice.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from lsr.backends.base import SparseBackend
from lsr.d2s.model import D2SModel
from lsr.encoders.base import ImageTextEncoder, SparseImageEncoder
from lsr.errors import InvalidInputError
from lsr.images.cache import FeatureCache
from lsr.images.io import DEFAULT_MAX_PIXELS, ImageError, open_rgb
from lsr.images.journal import Journal
from lsr.images.manifest import Manifest
from lsr.images.photo_meta import PHASH_VERSION, phash, photo_metadata
from lsr.images.vectorise import ImageVectoriser
from lsr.images.walk import ImageFile, WalkError, walk_images

logger = logging.getLogger(__name__)


@dataclass
class FolderIndexReport:
    """What one `index_image_folder` run did. `failed` maps a relative path to the reason."""

    indexed: int = 0
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    pruned: int = 0
    encoded: int = 0  # images run through the encoder (the rest of `indexed` came from the cache)
    cache_hits: int = 0
    renamed: int = 0  # moved files whose stored vectors moved with them (not encoded again)
    settling: int = 0  # files modified too recently to read (`settle_s`); looked at by the next run
    recovered: int = 0  # ids a killed run had noted in the journal, checked again by this one

    @property
    def changed(self) -> bool:
        """Whether this run changed the index."""
        return bool(self.indexed or self.pruned or self.renamed or self.recovered)

    def summary(self) -> str:
        extra = "".join(f", {name} {n}" for name, n in (("renamed", self.renamed), ("settling", self.settling),
                                                         ("recovered", self.recovered)) if n)
        return (f"indexed {self.indexed} (encoded {self.encoded}, from cache {self.cache_hits}), "
                f"unchanged {self.unchanged}, failed {len(self.failed)}, pruned {self.pruned}{extra}")


def index_image_folder(
    root: str | Path,
    encoder: ImageTextEncoder | SparseImageEncoder,
    backend: SparseBackend,
    model: D2SModel | None = None,
    *,
    manifest_path: str | Path | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_size: int | None = 512,
    prune: bool = False,
    commit: Callable[[], None] | None = None,
    show_progress: bool = False,
    settle_s: float = 0.0,
    commit_unchanged: bool = True,
) -> FolderIndexReport:
    """Index the images under `root` into `backend`; see the module docstring.

    `manifest_path` records what the backend holds (without it every run re-indexes everything);
    `cache_dir` keeps encoder features on disk; `commit` (default: `backend.commit`) is called once all
    writes are in the backend and before the manifest is saved, so the manifest never claims more than
    the backend holds. `settle_s` leaves files modified less than that many seconds ago for a later run
    (a copy still being written); with ``commit_unchanged=False`` a run that changed nothing neither
    commits nor rewrites the manifest (the watch loop's idle rounds).
    """
    root = Path(root)
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}.")
    vectoriser = ImageVectoriser(encoder, model)
    manifest = Manifest.load(manifest_path) if manifest_path is not None else Manifest()
    if len(manifest) and backend.count() == 0:
        logger.warning("manifest %s lists %d images but the backend is empty: re-indexing everything",
                       manifest_path, len(manifest))
        manifest = Manifest()
    signature = f"{vectoriser.signature}|meta:{PHASH_VERSION}"
    cache = FeatureCache(cache_dir, vectoriser.name, vectoriser.dim) if cache_dir is not None else None
    report = FolderIndexReport()
    journal = Journal(f"{manifest_path}.journal") if manifest_path is not None else None
    suspects = journal.pending() if journal is not None else set()
    if suspects:  # a killed run may have written these: look at each again
        logger.warning("%s: finishing an interrupted run (%d documents to check)", root, len(suspects))
        manifest.discard(suspects)
        report.recovered = len(suspects)
    moves = _MoveFinder(root, manifest, signature)
    now_ns = time.time_ns()
    seen: set[str] = set()
    unreadable_dirs: list[str] = []
    batch: list[ImageFile] = []
    progress = tqdm(desc="index images", unit="img", disable=not show_progress)

    def flush() -> None:
        if journal is not None:
            journal.note(f.doc_id for f in batch)
        _index_batch(batch, vectoriser, backend, manifest, cache, report, max_pixels, draft_size, batch_size,
                     signature)
        progress.update(len(batch))
        batch.clear()

    for item in walk_images(root):
        if isinstance(item, WalkError):
            report.failed[item.doc_id] = item.reason
            unreadable_dirs.append(item.doc_id)
            continue
        seen.add(item.doc_id)
        if manifest.is_current(item.doc_id, item.size, item.mtime_ns, signature):
            report.unchanged += 1
            continue
        if settle_s and now_ns - item.mtime_ns < settle_s * 1e9:
            report.settling += 1
            continue
        old = moves.source_of(item)
        if old is not None:
            if journal is not None:
                journal.note([item.doc_id, old])
            if _move(backend, manifest, old, item, signature):
                report.renamed += 1
                continue
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    progress.close()

    orphans = [i for i in suspects if i not in seen and not _under_any(i, unreadable_dirs)]
    if orphans:  # noted by a killed run, and the file is gone now: make sure the index lacks it too
        backend.delete(orphans)
    if prune:
        gone = [i for i in manifest.entries if i not in seen and not _under_any(i, unreadable_dirs)]
        if gone:
            if journal is not None:
                journal.note(gone)
            backend.delete(gone)
            manifest.discard(gone)
        report.pruned = len(gone)
    if not commit_unchanged and not report.changed and not report.failed:
        return report
    (commit or backend.commit)()
    if manifest_path is not None:
        manifest.save(manifest_path)
    if journal is not None:
        journal.clear()
    logger.info("%s: %s", root, report.summary())
    return report


def _index_batch(files: Sequence[ImageFile], vectoriser: ImageVectoriser, backend: SparseBackend,
                 manifest: Manifest, cache: FeatureCache | None, report: FolderIndexReport,
                 max_pixels: int, draft_size: int | None, batch_size: int, signature: str) -> None:
    keys = [(f.doc_id, f.size, f.mtime_ns) for f in files]
    cached = cache.get(keys) if cache is not None else {}
    sizes: dict[int, tuple[int, int]] = {pos: (c.width, c.height) for pos, c in cached.items()}
    features: dict[int, np.ndarray] = {pos: c.vector for pos, c in cached.items()}
    hashes: dict[int, str | None] = {pos: c.phash for pos, c in cached.items()}
    to_encode, images, stale = [], [], []
    for pos, f in enumerate(files):
        if pos in cached and hashes[pos] is not None:
            continue
        try:
            loaded = open_rgb(f.path, max_pixels=max_pixels, draft_size=draft_size)
        except ImageError as exc:
            report.failed[f.doc_id] = str(exc)
            features.pop(pos, None)
            if f.doc_id in manifest:
                stale.append(f.doc_id)
            continue
        hashes[pos] = phash(loaded.image)
        if pos in cached:  # cached by a release without hashes: hashed now, not encoded again
            continue
        to_encode.append(pos)
        images.append(loaded.image)
        sizes[pos] = (loaded.width, loaded.height)
    if stale:  # the file changed into something unreadable: its old vector no longer describes it
        backend.delete(stale)
        manifest.discard(stale)
    if images:
        encoded = vectoriser.features(images, batch_size=batch_size)
        del images
        for pos, vec in zip(to_encode, encoded):
            features[pos] = vec
        if cache is not None:
            cache.put([keys[p] for p in to_encode], encoded, [sizes[p] for p in to_encode],
                      [hashes[p] for p in to_encode])
        report.encoded += len(to_encode)
    report.cache_hits += len(cached)
    order = sorted(features)
    if not order:
        return
    sparse = vectoriser.to_sparse(np.stack([features[p] for p in order]))
    ids = [files[p].doc_id for p in order]
    metadata = [
        {"path": str(files[p].path.absolute()), "width": sizes[p][0], "height": sizes[p][1],
         "file_size": files[p].size, "mtime": files[p].mtime_ns / 1e9, "encoder": vectoriser.name,
         **photo_metadata(files[p].path, sizes[p][0], sizes[p][1], files[p].mtime_ns), "phash": hashes[p]}
        for p in order
    ]
    result = backend.index(ids, sparse, metadata)
    report.failed.update(result.failed)
    for p in order:
        f = files[p]
        if f.doc_id not in result.failed:
            manifest.set(f.doc_id, f.size, f.mtime_ns, signature)
    report.indexed += len(ids) - len([i for i in ids if i in result.failed])


class _MoveFinder:
    """Finds the old id of a moved file: a manifest entry of the same size, mtime and signature whose file
    is gone. Each old id is claimed once (two copies of a moved file: the second is indexed anew)."""

    def __init__(self, root: Path, manifest: Manifest, signature: str):
        self.root = root
        self.by_key: dict[tuple[int, int], list[str]] = {}
        for doc_id, entry in manifest.entries.items():
            if entry.signature == signature:
                self.by_key.setdefault((entry.size, entry.mtime_ns), []).append(doc_id)

    def source_of(self, item: ImageFile) -> str | None:
        candidates = self.by_key.get((item.size, item.mtime_ns))
        if not candidates:
            return None
        for old in candidates:
            if old != item.doc_id and not os.path.lexists(self.root / old):
                candidates.remove(old)
                return old
        return None


def _move(backend: SparseBackend, manifest: Manifest, old: str, item: ImageFile, signature: str) -> bool:
    """Re-write `old`'s vector and metadata under `item`'s id and delete `old`; False when the index no
    longer holds `old` (the caller then indexes the file as new)."""
    try:
        vector, meta = backend.get(old), dict(backend.metadata(old))
    except KeyError:
        manifest.discard([old])
        return False
    meta["path"] = str(item.path.absolute())
    dense = backend.dense_vectors([old]) if backend.dense_dim is not None else None
    result = backend.index([item.doc_id], [vector], [meta], dense=dense)
    if item.doc_id in result.failed:
        return False
    backend.delete([old])
    manifest.discard([old])
    manifest.set(item.doc_id, item.size, item.mtime_ns, signature)
    return True


def _under_any(doc_id: str, directories: Sequence[str]) -> bool:
    """Whether `doc_id` lies in one of `directories` (relative POSIX paths; '.' is the root)."""
    return any(d == "." or doc_id.startswith(d.rstrip("/") + "/") for d in directories)
