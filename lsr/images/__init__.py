"""Image folders: safe loading, a streaming walk, a feature cache and incremental indexing."""

from lsr.images.indexer import FolderIndexReport, index_image_folder

__all__ = ["FolderIndexReport", "index_image_folder"]
