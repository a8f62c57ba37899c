"""Index backends: one interface (`base.SparseBackend`), an embedded in-process index, OpenSearch.

Names load on first use, so importing one submodule (say `lsr.backends.opensearch.connection`, which the
command line's parser reads its defaults from) does not pull in the embedded index and scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsr.lazy import lazy_exports

_EXPORTS = {"Hit": "lsr.backends.base", "IndexReport": "lsr.backends.base", "SparseBackend": "lsr.backends.base",
            "EmbeddedIndex": "lsr.backends.embedded"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lsr.backends.base import Hit, IndexReport, SparseBackend
    from lsr.backends.embedded import EmbeddedIndex

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
