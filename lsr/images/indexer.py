"""Index a folder of images into any `SparseBackend`, streaming, incrementally and idempotently.

The folder is walked lazily and processed `batch_size` files at a time; only one batch of decoded
images is ever in memory. A file whose (size, mtime) and encoder/model signature match the manifest is
left alone; a new or changed one is (re)encoded and written under its id (the relative POSIX path), which
replaces the old vector, never duplicates it. Features come from the on-disk cache when the file is
unchanged there. Unreadable files are reported with a reason (and a stale old version is removed);
`prune=True` deletes documents whose files are gone.
"""

from __future__ import annotations

import logging
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
from lsr.images.manifest import Manifest
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

    def summary(self) -> str:
        return (f"indexed {self.indexed} (encoded {self.encoded}, from cache {self.cache_hits}), "
                f"unchanged {self.unchanged}, failed {len(self.failed)}, pruned {self.pruned}")


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
) -> FolderIndexReport:
    """Index the images under `root` into `backend`; see the module docstring.

    `manifest_path` records what the backend holds (without it every run re-indexes everything);
    `cache_dir` keeps encoder features on disk; `commit` (default: `backend.commit`) is called once all
    writes are in the backend and before the manifest is saved, so the manifest never claims more than
    the backend holds.
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
    cache = FeatureCache(cache_dir, vectoriser.name, vectoriser.dim) if cache_dir is not None else None
    report = FolderIndexReport()
    seen: set[str] = set()
    unreadable_dirs: list[str] = []
    batch: list[ImageFile] = []
    progress = tqdm(desc="index images", unit="img", disable=not show_progress)

    def flush() -> None:
        _index_batch(batch, root, vectoriser, backend, manifest, cache, report, max_pixels, draft_size, batch_size)
        progress.update(len(batch))
        batch.clear()

    for item in walk_images(root):
        if isinstance(item, WalkError):
            report.failed[item.doc_id] = item.reason
            unreadable_dirs.append(item.doc_id)
            continue
        seen.add(item.doc_id)
        if manifest.is_current(item.doc_id, item.size, item.mtime_ns, vectoriser.signature):
            report.unchanged += 1
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    progress.close()

    if prune:
        gone = [i for i in manifest.entries if i not in seen and not _under_any(i, unreadable_dirs)]
        if gone:
            backend.delete(gone)
            manifest.discard(gone)
        report.pruned = len(gone)
    (commit or backend.commit)()
    if manifest_path is not None:
        manifest.save(manifest_path)
    logger.info("%s: %s", root, report.summary())
    return report


def _index_batch(files: Sequence[ImageFile], root: Path, vectoriser: ImageVectoriser, backend: SparseBackend,
                 manifest: Manifest, cache: FeatureCache | None, report: FolderIndexReport,
                 max_pixels: int, draft_size: int | None, batch_size: int) -> None:
    keys = [(f.doc_id, f.size, f.mtime_ns) for f in files]
    cached = cache.get(keys) if cache is not None else {}
    sizes: dict[int, tuple[int, int]] = {pos: (c.width, c.height) for pos, c in cached.items()}
    features: dict[int, np.ndarray] = {pos: c.vector for pos, c in cached.items()}
    to_encode, images, stale = [], [], []
    for pos, f in enumerate(files):
        if pos in cached:
            continue
        try:
            loaded = open_rgb(f.path, max_pixels=max_pixels, draft_size=draft_size)
        except ImageError as exc:
            report.failed[f.doc_id] = str(exc)
            if f.doc_id in manifest:
                stale.append(f.doc_id)
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
            cache.put([keys[p] for p in to_encode], encoded, [sizes[p] for p in to_encode])
        report.encoded += len(to_encode)
    report.cache_hits += len(cached)
    order = sorted(features)
    if not order:
        return
    sparse = vectoriser.to_sparse(np.stack([features[p] for p in order]))
    ids = [files[p].doc_id for p in order]
    metadata = [
        {"path": str(files[p].path.absolute()), "width": sizes[p][0], "height": sizes[p][1],
         "file_size": files[p].size, "mtime": files[p].mtime_ns / 1e9, "encoder": vectoriser.name}
        for p in order
    ]
    result = backend.index(ids, sparse, metadata)
    report.failed.update(result.failed)
    for p in order:
        f = files[p]
        if f.doc_id not in result.failed:
            manifest.set(f.doc_id, f.size, f.mtime_ns, vectoriser.signature)
    report.indexed += len(ids) - len([i for i in ids if i in result.failed])


def _under_any(doc_id: str, directories: Sequence[str]) -> bool:
    """Whether `doc_id` lies in one of `directories` (relative POSIX paths; '.' is the root)."""
    return any(d == "." or doc_id.startswith(d.rstrip("/") + "/") for d in directories)
