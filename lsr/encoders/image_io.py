"""Open one image file safely as an RGB PIL image.

EXIF orientation is applied; RGBA/LA/PA and palette images with transparency are composited on
white; 16-bit and float greyscale are scaled to 8 bits; CMYK and other modes are converted to RGB;
an animated GIF gives its first frame. Images over `max_pixels` are refused before decoding (the
decompression-bomb guard). Every failure is an `ImageError` whose message says why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lsr.errors import InvalidInputError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own Image.MAX_IMAGE_PIXELS default (~ 0.25 GB of RGBA)
_ORIENTATION_TAG = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


class ImageError(InvalidInputError):
    """An image file that cannot be used; the message is the reason reported for it."""


@dataclass
class LoadedImage:
    """An RGB image and the facts recorded about its file: size after EXIF orientation."""

    image: Image.Image
    width: int
    height: int


def open_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, draft_size: int | None = None) -> LoadedImage:
    """Open `path` as RGB. `draft_size` lets JPEG decoding downscale by powers of two while keeping
    both sides >= draft_size (much faster for large photos); width/height stay the original ones."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise ImageError("empty file (0 bytes)")
    return _decode(path, max_pixels, draft_size)


def decode_rgb(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int | None = None,
               draft_size: int | None = None) -> LoadedImage:
    """`open_rgb` for an image held in memory (an upload): the same limits and conversions, never a file
    on disk. `max_bytes` refuses larger data before decoding."""
    if not data:
        raise ImageError("empty image (0 bytes)")
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageError(f"too large: {len(data)} bytes exceeds the limit of {max_bytes}")
    import io

    return _decode(io.BytesIO(data), max_pixels, draft_size)


def _decode(source, max_pixels: int, draft_size: int | None) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # we apply our own cap below
            with Image.open(source) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(f"too large: {width}x{height} = {width * height} pixels exceeds the "
                                     f"limit of {max_pixels} (raise max_pixels to accept it)")
                if draft_size and img.format == "JPEG":
                    img.draft(None, (draft_size, draft_size))
                img.seek(0)
                img.load()
                orientation = img.getexif().get(_ORIENTATION_TAG)
                rgb = to_rgb(ImageOps.exif_transpose(img))
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"too large (Pillow decompression-bomb guard): {exc}") from None
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(f"corrupt or truncated image: {exc}") from None
    if orientation in _TRANSPOSED:
        width, height = height, width
    return LoadedImage(rgb, width, height)


def to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any Pillow mode to RGB (transparency composited on `background`)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_to_rgb(img)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer or float greyscale -> 8-bit RGB."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        scaled = arr.astype(np.float32) / 257.0
    elif img.mode == "F" and np.nanmax(arr, initial=0.0) <= 1.0:
        scaled = arr.astype(np.float32) * 255.0
    elif np.nanmax(arr, initial=0) > 255:  # 32-bit ints or floats: assume a 16-bit range
        scaled = arr.astype(np.float32) / 257.0
    else:
        scaled = arr.astype(np.float32)
    grey = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")  # uint8 2-d -> mode L
