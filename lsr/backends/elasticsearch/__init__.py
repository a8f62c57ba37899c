"""The Elasticsearch backend: `sparse_vector` fields on a real Elasticsearch node (8.11+; 9.x tested).

Names load on first use, so importing this package pulls in neither elasticsearch-py nor numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"ElasticsearchIndex": "lsr.backends.elasticsearch.index",
            "ElasticsearchSetIndex": "lsr.backends.elasticsearch.sets",
            "RELATIVE_SCORE_BOUND": "lsr.backends.elasticsearch.index",
            "SEARCH_MODES": "lsr.backends.elasticsearch.index",
            "connect": "lsr.backends.elasticsearch.client"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lsr.backends.elasticsearch.client import connect
    from lsr.backends.elasticsearch.index import RELATIVE_SCORE_BOUND, SEARCH_MODES, ElasticsearchIndex
    from lsr.backends.elasticsearch.sets import ElasticsearchSetIndex


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
