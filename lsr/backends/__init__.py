"""Index backends: one interface (`base.SparseBackend`), an embedded in-process index, later OpenSearch."""

from lsr.backends.base import Hit, IndexReport, SparseBackend
from lsr.backends.embedded import EmbeddedIndex

__all__ = ["EmbeddedIndex", "Hit", "IndexReport", "SparseBackend"]
