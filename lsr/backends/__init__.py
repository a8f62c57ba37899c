"""Index backends: one interface (`base.SparseBackend`), an embedded in-process index, later OpenSearch."""

from lsr.backends.base import Hit, IndexReport, SparseBackend

__all__ = ["Hit", "IndexReport", "SparseBackend"]
