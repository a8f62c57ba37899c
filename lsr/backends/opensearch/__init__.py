"""The OpenSearch backend: connection and client, definitions, the index, bulk loading, queries, feature names."""

from lsr.backends.opensearch.client import (AccessDeniedError, CertificateVerifyError, NodeUnavailableError, connect,
                                            load_definition, two_phase_pipeline)
from lsr.backends.opensearch.connection import Connection
from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND, OpenSearchIndex
from lsr.backends.opensearch.searching import SEARCH_MODES

__all__ = ["RELATIVE_SCORE_BOUND", "SEARCH_MODES", "AccessDeniedError", "CertificateVerifyError", "Connection",
           "NodeUnavailableError", "OpenSearchIndex", "connect", "load_definition", "two_phase_pipeline"]
