"""Index backends: one interface (`base.SparseBackend`), an embedded in-process index, OpenSearch.

Names load on first use, so importing one submodule (say `lsr.backends.opensearch.connection`, which the
command line's parser reads its defaults from) does not pull in the embedded index and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"Hit": "lsr.backends.base", "IndexReport": "lsr.backends.base", "SparseBackend": "lsr.backends.base",
            "EmbeddedIndex": "lsr.backends.embedded"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lsr.backends.base import Hit, IndexReport, SparseBackend
    from lsr.backends.embedded import EmbeddedIndex


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
