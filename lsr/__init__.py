"""Multimodal learned sparse retrieval: frozen dense encoders -> dense-to-sparse projection ->
inverted index backends (embedded, OpenSearch) -> search -> evaluation.

    from lsr import D2SEncoder, EmbeddedIndex, SparseSearcher

Names are imported on first use, so `import lsr` stays cheap (no torch, no OpenSearch client).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "D2SEncoder": "lsr.encoders.sparse",
    "LabelTokenEncoder": "lsr.encoders.sparse",
    "InferenceFreeEncoder": "lsr.encoders.sparse",
    "EmbeddedSetIndex": "lsr.backends.embedded_sets",
    "SparseEncoder": "lsr.encoders.sparse",
    "SparseSearcher": "lsr.search",
    "EmbeddedIndex": "lsr.backends.embedded",
    "OpenSearchIndex": "lsr.backends.opensearch",
    "SparseBackend": "lsr.backends.base",
    "Hit": "lsr.backends.base",
    "IndexReport": "lsr.backends.base",
    "D2SModel": "lsr.d2s.model",
    "D2SConfig": "lsr.d2s.model",
    "SparseVector": "lsr.sparse",
    "SparseBatch": "lsr.sparse",
    "Vocabulary": "lsr.vocab",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lsr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
