"""What a photo is, for filters and duplicate groups: date taken, camera, orientation, file type, and a
perceptual hash of its pixels.

EXIF is read with Pillow's own support (`Image.getexif`, header only: no pixels decoded). Every tag is
read on its own and a broken one is skipped, so bad EXIF never fails a photo: a missing or unparsable
DateTimeOriginal falls back to the file's modification time (``taken_from`` says which). Dates are local
time as the camera writes them, ``YYYY-MM-DDTHH:MM:SS`` (`lsr.backends.filters.DATE_FORMAT`); the
fallback converts the file time to the machine's local time.

The perceptual hash (`phash`) is the classic DCT hash: the image (EXIF orientation applied) in grey at
32x32, the 8x8 lowest frequencies of its 2-d DCT but the constant one, each bit set when above their
median; 16 hex digits. Resizing, re-encoding, small crops and brightness changes move few bits; other
photos differ in about half of them (`lsr.app.duplicates`).
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lsr.backends.filters import DATE_FORMAT

log = logging.getLogger(__name__)

EXIF_IFD, DATETIME_ORIGINAL, MAKE, MODEL = 0x8769, 0x9003, 0x010F, 0x0110
MAX_TEXT = 64
FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff", "MPO": "jpeg"}
PHASH_VERSION = "p1"  # bump when the hash changes: the indexer re-hashes every photo


def photo_metadata(path: str | Path, width: int, height: int, mtime_ns: int) -> dict[str, Any]:
    """Filterable facts about one photo file (the width and height after EXIF orientation)."""
    path = Path(path)
    meta: dict[str, Any] = {"orientation": orientation(width, height)}
    exif, fmt = _read_exif(path)
    meta["file_type"] = FORMATS.get(fmt or "", "") or path.suffix.lower().lstrip(".").replace("jpg", "jpeg")
    taken = _exif_date(_tag(exif, DATETIME_ORIGINAL, ifd=EXIF_IFD))
    if taken is not None:
        meta["taken"], meta["taken_from"] = taken, "exif"
    else:
        meta["taken"] = dt.datetime.fromtimestamp(mtime_ns / 1e9).strftime(DATE_FORMAT)
        meta["taken_from"] = "mtime"
    make, model = _text(_tag(exif, MAKE)), _text(_tag(exif, MODEL))
    if make:
        meta["camera_make"] = make
    if model:
        meta["camera_model"] = model
    camera = list(dict.fromkeys(v.lower() for v in (make, model) if v))
    if camera:
        meta["camera"] = camera
    return meta


def orientation(width: int, height: int) -> str:
    return "square" if width == height else "landscape" if width > height else "portrait"


def phash(image: Image.Image) -> str:
    """The 64-bit DCT perceptual hash of an image, as 16 hex digits (module docstring)."""
    from scipy.fft import dctn

    grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float64)
    low = dctn(grey, norm="ortho")[:8, :8].reshape(-1)[1:]  # 63 coefficients without the DC term
    bits = np.concatenate([[False], low > np.median(low)])
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Differing bits between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _read_exif(path: Path) -> tuple[Any, str | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                fmt = img.format
                try:
                    return img.getexif(), fmt
                except Exception as exc:  # noqa: BLE001 - broken EXIF never fails the photo
                    log.debug("no EXIF from %s: %s", path, exc)
                    return None, fmt
    except Exception as exc:  # noqa: BLE001 - the loader reports unreadable files; here: no facts
        log.debug("cannot open %s for EXIF: %s", path, exc)
        return None, None


def _tag(exif: Any, tag: int, ifd: int | None = None) -> Any:
    if exif is None:
        return None
    try:
        source = exif.get_ifd(ifd) if ifd is not None else exif
        return source.get(tag)
    except Exception as exc:  # noqa: BLE001 - one broken tag or IFD is skipped
        log.debug("unreadable EXIF tag %#x: %s", tag, exc)
        return None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(value.replace("\x00", " ").split())[:MAX_TEXT]
    return text if text and text.isprintable() else None


def _exif_date(value: Any) -> str | None:
    text = _text(value)
    if not text:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y:%m:%d"):
        try:
            when = dt.datetime.strptime(text[:19], fmt)
        except ValueError:
            continue
        return when.strftime(DATE_FORMAT) if 1800 <= when.year <= 2200 else None
    return None
