"""Image files for the search page: served only from the folders an index was built from, with thumbnails.

A file's URL path is ``ROOT/RELATIVE`` (the root's number, then the path inside it). `ImageFiles.resolve`
turns it back into a file, or raises `OutsideRoots` for anything that is not a file's place inside a root:
``..`` parts, absolute paths, backslashes, NUL, an unknown root, a directory, or a symlink leading out of
its root (the path is resolved before it is checked). Thumbnails are made once with Pillow (EXIF
orientation applied, as by the indexer) and cached on disk by path, size, mtime and thumbnail size.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Sequence

log = logging.getLogger(__name__)

THUMB_SIZE = 256
PLACEHOLDER_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">'
                   b'<rect width="256" height="256" fill="#e5e7eb"/><text x="128" y="134" font-family="sans-serif" '
                   b'font-size="18" text-anchor="middle" fill="#6b7280">image unavailable</text></svg>')


class OutsideRoots(LookupError):
    """The URL path does not name a file inside one of the index's folders (answered with 404)."""


class ImageFiles:
    """The folders an index was built from, and the thumbnails of their images."""

    def __init__(self, roots: Sequence[str | Path], cache_dir: str | Path, thumb_size: int = THUMB_SIZE):
        self.roots = [Path(r).resolve() for r in roots]
        self.cache_dir = Path(cache_dir)
        self.thumb_size = thumb_size

    def url_path(self, path: str | None) -> str | None:
        """``ROOT/RELATIVE`` for an indexed file's path, or None when it lies under no root."""
        if not path:
            return None
        absolute = Path(os.path.abspath(path))
        for number, root in enumerate(self.roots):
            if absolute.is_relative_to(root):
                return f"{number}/{absolute.relative_to(root).as_posix()}"
        return None

    def resolve(self, url_path: str) -> Path:
        """The file that `url_path` names inside a root (it may have gone missing since indexing)."""
        number, _, relative = url_path.partition("/")
        if not number.isdigit() or int(number) >= len(self.roots) or not relative:
            raise OutsideRoots(url_path)
        if relative.startswith("/") or "\\" in relative or "\x00" in relative or ".." in PurePosixPath(relative).parts:
            raise OutsideRoots(url_path)
        root = self.roots[int(number)]
        candidate = (root / relative).resolve()  # follows symlinks, so one leading out of the root is caught
        if not candidate.is_relative_to(root) or candidate.is_dir():
            raise OutsideRoots(url_path)
        return candidate

    def thumbnail(self, path: Path) -> Path | None:
        """A cached JPEG thumbnail of `path`, made on first use; None when the file is missing or unreadable."""
        from lsr.images.io import ImageError, open_rgb

        try:
            stat = path.stat()
        except OSError:
            return None
        key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{self.thumb_size}".encode()).hexdigest()
        cached = self.cache_dir / key[:2] / f"{key}.jpg"
        if cached.is_file():
            return cached
        try:
            loaded = open_rgb(path, draft_size=self.thumb_size)
        except (ImageError, OSError) as exc:
            log.info("no thumbnail for %s: %s", path, exc)
            return None
        image = loaded.image
        image.thumbnail((self.thumb_size, self.thumb_size))
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        image.save(partial, "JPEG", quality=85)
        os.replace(partial, cached)  # concurrent requests for one image never see half a file
        return cached
