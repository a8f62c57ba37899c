"""Walk a folder recursively for image files, lazily and in a stable order.

Document ids are the files' paths relative to the root, in POSIX form (`holiday/beach/01.jpg`), so they
are stable across machines and re-runs. Symbolic links to directories are followed once: each real
directory is visited at most once, so a symlink loop cannot hang the walk.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lsr.errors import MissingFileError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True)
class ImageFile:
    """One candidate image: its id (relative POSIX path), location, size in bytes and mtime (ns)."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class WalkError:
    """A file or directory the walk could not read, with the reason."""

    doc_id: str
    reason: str


def walk_images(root: str | Path, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> Iterator[ImageFile | WalkError]:
    """Yield image files under `root` (by extension, case-insensitive) in sorted order, or `WalkError`s."""
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"Image folder {root} does not exist or is not a directory.")
    visited: set[tuple[int, int]] = set()
    stack: list[Path] = [root]
    while stack:
        directory = stack.pop()
        rel_dir = directory.relative_to(root).as_posix()
        try:
            st = directory.stat()
        except OSError as exc:
            yield WalkError(rel_dir, f"cannot read directory: {exc.strerror or exc}")
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:
            logger.debug("skipping %s: directory already visited (symlink loop or alias)", directory)
            continue
        visited.add(key)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield WalkError(rel_dir, f"cannot list directory: {exc.strerror or exc}")
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            doc_id = path.relative_to(root).as_posix()
            try:
                if entry.is_dir(follow_symlinks=True):
                    subdirs.append(path)
                    continue
                if os.path.splitext(entry.name)[1].lower() not in extensions:
                    continue
                fst = entry.stat(follow_symlinks=True)
            except OSError as exc:  # e.g. a dangling symlink
                if os.path.splitext(entry.name)[1].lower() in extensions:
                    yield WalkError(doc_id, f"cannot read file: {exc.strerror or exc}")
                continue
            if entry.is_file(follow_symlinks=True):
                yield ImageFile(doc_id, path, int(fst.st_size), int(fst.st_mtime_ns))
        stack.extend(reversed(subdirs))  # depth-first, in name order
