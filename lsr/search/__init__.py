"""Search: query text -> sparse encoder -> any backend -> ranked hits, and the scoring modes built on it.

- `searcher.py`: `SparseSearcher`, one sparse dot product per query (the single-vector mode).
- `tokens.py`: document token vectors kept beside an index, for late interaction.
- `rerank.py`: two-stage retrieval: sparse candidates re-scored by dense cosine, token-level late
  interaction (TGDT) or an image-text matching head. (Dense re-ranking and hybrid fusion run inside
  the backends: `SparseBackend.search_reranked` / `search_hybrid`, formulas in `lsr.backends.fusion`.)
- `sets.py`: set-of-embeddings items (DivE's smooth-Chamfer; max / sum / avg over members).
"""

from lsr.search.searcher import SparseSearcher

__all__ = ["SparseSearcher"]
