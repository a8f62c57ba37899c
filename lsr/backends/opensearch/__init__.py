"""The OpenSearch backend: connection and client, definitions, the index, bulk loading, queries, feature names.

Names load on first use: `lsr.backends.opensearch.connection` alone stays free of opensearch-py and numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsr.lazy import lazy_exports

_CLIENT = "lsr.backends.opensearch.client"
_EXPORTS = {"AccessDeniedError": _CLIENT, "CertificateVerifyError": _CLIENT, "NodeUnavailableError": _CLIENT,
            "connect": _CLIENT, "load_definition": _CLIENT, "two_phase_pipeline": _CLIENT,
            "Connection": "lsr.backends.opensearch.connection",
            "RELATIVE_SCORE_BOUND": "lsr.backends.opensearch.index", "OpenSearchIndex": "lsr.backends.opensearch.index",
            "SEARCH_MODES": "lsr.backends.opensearch.searching"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lsr.backends.opensearch.client import (AccessDeniedError, CertificateVerifyError, NodeUnavailableError,
                                                connect, load_definition, two_phase_pipeline)
    from lsr.backends.opensearch.connection import Connection
    from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND, OpenSearchIndex
    from lsr.backends.opensearch.searching import SEARCH_MODES

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
