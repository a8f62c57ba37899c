"""Search: query text -> sparse encoder -> any index -> ranked hits, and the scoring modes built on it.

- `searcher.py`: `SparseSearcher` (alias `Searcher`): one call per query, typed scoring modes.
- `modes.py`: the scoring modes (`Rerank`, `Hybrid`, `SetScoring`) and `Retrieval` (exact / two-phase / ANN).
- `tokens.py`: document token vectors kept beside an index, for late interaction.
- `rerank.py`: two-stage retrieval: sparse candidates re-scored by dense cosine, token-level late
  interaction (TGDT) or an image-text matching head. (Dense re-ranking and hybrid fusion run inside
  the backends: `SparseBackend.search_reranked` / `search_hybrid`, formulas in `lsr.backends.fusion`.)
- `sets.py`: set-of-embeddings items (DivE's smooth-Chamfer; max / sum / avg over members).

Names load on first use, so the command line can read `lsr.search.modes` without the searcher's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsr.lazy import lazy_exports

_EXPORTS = {"Hybrid": "lsr.search.modes", "Rerank": "lsr.search.modes", "Retrieval": "lsr.search.modes",
            "SetScoring": "lsr.search.modes", "parse_mode": "lsr.search.modes",
            "Searcher": "lsr.search.searcher", "SparseSearcher": "lsr.search.searcher"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lsr.search.modes import Hybrid, Rerank, Retrieval, SetScoring, parse_mode
    from lsr.search.searcher import Searcher, SparseSearcher

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
