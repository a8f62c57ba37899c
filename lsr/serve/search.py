"""What the search page shows, as JSON-ready dicts: hits with their matched tokens, the query's expansion,
paging, and "more like this" (an indexed image's own sparse vector as the query). HTTP lives in
`lsr.serve.page`; this module knows the searcher and the image files only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lsr.search.modes import Hybrid, Mode, Rerank, Retrieval
from lsr.serve.app import HttpError

if TYPE_CHECKING:
    from lsr.backends.base import Hit
    from lsr.search import SparseSearcher
    from lsr.serve.files import ImageFiles

# the page's mode name -> (expand, scoring mode); the dense modes are offered when the index keeps dense vectors
BASE_MODES: dict[str, tuple[bool, Mode | None]] = {"expanded": (True, None), "no-expansion": (False, None)}
DENSE_MODES: dict[str, tuple[bool, Mode | None]] = {"rerank-dense": (True, Rerank("dense", candidates=100)),
                                                    "hybrid": (True, Hybrid("min_max", weight=0.5, depth=100))}


@dataclass
class PageConfig:
    max_query_chars: int = 256
    max_k: int = 100
    max_results: int = 1000  # k * (page + 1): how deep paging may go
    tokens_per_hit: int = 8
    expansion_tokens: int = 24


class SearchService:
    """Searches for the page and the JSON API; bad parameters raise `HttpError` with a 4xx status."""

    def __init__(self, searcher: "SparseSearcher", files: "ImageFiles | None" = None, config: PageConfig | None = None,
                 retrieval: Retrieval = Retrieval()):
        """`retrieval` applies to every search (e.g. OpenSearch's ``Retrieval("two_phase")``)."""
        self.searcher, self.files = searcher, files
        self.config = config or PageConfig()
        self.retrieval = retrieval
        dense = getattr(searcher.backend, "dense_dim", None) is not None and hasattr(searcher.encoder,
                                                                                      "encode_query_dense")
        self.modes = {**BASE_MODES, **(DENSE_MODES if dense else {})}

    def info(self) -> dict[str, Any]:
        return {"modes": list(self.modes), "max_k": self.config.max_k, "documents": self.searcher.backend.count(),
                "encoder": self.searcher.encoder.provenance().get("encoder"), "images": self.files is not None}

    def search(self, q: str | None, k: Any = 10, mode: str | None = None, page: Any = 0) -> dict[str, Any]:
        text = (q or "").strip()
        if not text:
            raise HttpError(422, "q is empty; type some words to search for.")
        if len(text) > self.config.max_query_chars:
            raise HttpError(413, f"q has {len(text)} characters; the limit is {self.config.max_query_chars}.")
        mode = mode or "expanded"
        if mode not in self.modes:
            raise HttpError(422, f"mode {mode!r} is not offered by this index; choose one of {', '.join(self.modes)}.")
        k, page = self._paging(k, page)
        expand, scoring = self.modes[mode]
        started = time.perf_counter()
        query = self.searcher.encode_query(text, expand)
        if isinstance(scoring, Rerank):
            scoring = replace(scoring, candidates=max(scoring.candidates, k * (page + 1) + 1))
        hits = self.searcher.search(text, k=k * (page + 1) + 1, expand=expand, mode=scoring, retrieval=self.retrieval)
        took = (time.perf_counter() - started) * 1000
        expansion = self.searcher.encoder.decode(query, self.config.expansion_tokens)
        return {"query": text, "mode": mode, "k": k, "page": page, "took_ms": round(took, 2),
                "expansion": [[token, round(float(w), 4)] for token, w in expansion],
                **self._page(hits, k, page)}

    def similar(self, doc_id: str | None, k: Any = 10, page: Any = 0) -> dict[str, Any]:
        if not doc_id:
            raise HttpError(422, "id is missing; give the id of an indexed image.")
        k, page = self._paging(k, page)
        started = time.perf_counter()
        try:
            hits = self.searcher.more_like_this(doc_id, k=k * (page + 1) + 1, retrieval=self.retrieval)
        except KeyError:
            raise HttpError(404, f"No document {doc_id!r} in this index.") from None
        took = (time.perf_counter() - started) * 1000
        return {"similar_to": doc_id, "k": k, "page": page, "took_ms": round(took, 2), **self._page(hits, k, page)}

    def _paging(self, k: Any, page: Any) -> tuple[int, int]:
        try:
            k, page = int(k), int(page)
        except (TypeError, ValueError):
            raise HttpError(422, f"k and page must be whole numbers (got k={k!r}, page={page!r}).") from None
        if not 1 <= k <= self.config.max_k:
            raise HttpError(422, f"k must be between 1 and {self.config.max_k} (got {k}).")
        if page < 0 or k * (page + 1) > self.config.max_results:
            raise HttpError(422, f"page {page} with k={k} goes past the first {self.config.max_results} results.")
        return k, page

    def _page(self, hits: list["Hit"], k: int, page: int) -> dict[str, Any]:
        shown = hits[k * page:k * (page + 1)]
        return {"has_more": len(hits) > k * (page + 1),
                "hits": [self._hit(hit, k * page + i + 1) for i, hit in enumerate(shown)]}

    def _hit(self, hit: "Hit", rank: int) -> dict[str, Any]:
        meta = hit.metadata or {}
        path = meta.get("path")
        where = self.files.url_path(path) if self.files is not None else None
        tokens = hit.top_tokens(self.config.tokens_per_hit)
        return {"rank": rank, "id": hit.id, "score": round(float(hit.score), 6),
                "path": path, "caption": meta.get("caption"), "file_size": meta.get("file_size"),
                "width": meta.get("width"), "height": meta.get("height"),
                "tokens": [[t, round(float(c), 6)] for t, c in tokens],
                "thumb": f"/thumb/{where}" if where else None, "image": f"/image/{where}" if where else None}
