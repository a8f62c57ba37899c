"""The safe image loader, re-exported for the image-folder indexer: it lives in `lsr.encoders.image_io`
because encoders open image files too, and encoders sit below image folders in the layers."""

from lsr.encoders.image_io import DEFAULT_MAX_PIXELS, ImageError, LoadedImage, open_rgb, to_rgb

__all__ = ["DEFAULT_MAX_PIXELS", "ImageError", "LoadedImage", "open_rgb", "to_rgb"]
