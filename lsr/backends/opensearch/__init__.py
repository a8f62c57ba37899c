"""The OpenSearch backend: client and definitions, the index, bulk loading, queries, feature names."""

from lsr.backends.opensearch.client import connect, load_definition, project_root, two_phase_pipeline
from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND, SEARCH_MODES, OpenSearchIndex

__all__ = ["RELATIVE_SCORE_BOUND", "SEARCH_MODES", "OpenSearchIndex", "connect", "load_definition", "project_root",
           "two_phase_pipeline"]
