"""Two-stage retrieval, coarse to fine (after TGDT, Liu et al., IEEE TIP 2023): the sparse index returns
the top N candidates, and a finer scorer re-scores only those. A relevant item stage 1 did not return
is a miss at every K (TGDT's public evaluation records such a query as rank 0, an R@1 hit; not here).

- ``dense``: the frozen model's exact cosine; runs inside the backend (`SparseBackend.search_reranked`:
  OpenSearch rescores in the engine).
- ``late``: token-level late interaction (`lsr.search.tokens.late_scores`): for each query token the
  best cosine over the document's token vectors, summed, plus the global cosine; document token
  vectors come from a `TokenStore` written once beside the index.
- ``itm``: an image-text matching head (`lsr.search.itm.ITMScorer`, BLIP's), on the candidates' images.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from lsr.backends.base import Hit, rescore
from lsr.errors import InvalidInputError

if TYPE_CHECKING:
    from lsr.search.itm import ITMScorer
    from lsr.search.tokens import TokenStore

def late_rerank(hits: list[Hit], query_tokens: np.ndarray, store: "TokenStore", doc_dense: np.ndarray,
                dense_query: np.ndarray) -> list[Hit]:
    """Re-score stage-1 hits by late interaction + global cosine (best first)."""
    from lsr.search.tokens import late_scores

    if not hits:
        return []
    ids = [h.id for h in hits]
    return rescore(hits, late_scores(query_tokens, store.get(ids), doc_dense @ dense_query), "late")


def itm_rerank(hits: list[Hit], text: str, scorer: "ITMScorer",
               image_of: Callable[[Hit], object] | None = None) -> list[Hit]:
    """Re-score stage-1 hits by the ITM head's match probability; `image_of` maps a hit to its image
    (default: the ``path`` in its metadata)."""
    if not hits:
        return []
    images: Sequence[object] = [(image_of or _image_path)(h) for h in hits]
    return rescore(hits, scorer.score(text, images), "itm")


def _image_path(hit: Hit) -> object:
    path = hit.metadata.get("path")
    if not path:
        raise InvalidInputError(f"Hit {hit.id!r} has no 'path' in its metadata; ITM re-ranking needs each hit's image "
                         "(index image folders with `lsr index-images`, or pass image_of=).")
    return Path(path)
