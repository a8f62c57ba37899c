"""What the search page shows, as JSON-ready dicts: hits with their matched tokens, the query's expansion,
paging, "more like this" (an indexed image's own sparse vector as the query) and search by an example
image (an upload, decoded in memory and never stored, or a file of the index's folders). Every search
takes the photo filters (`lsr.images.photos.photo_filter`: folder, taken after / before, camera, ...),
hides hits under the encoder's score floor (saying how many) and folds near-duplicates into one hit with
a count. HTTP lives in `lsr.serve.page`; this module knows the searcher and the image files only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lsr.errors import InvalidInputError
from lsr.images.photos import collapse_hits, photo_filter, score_floor
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
    max_upload_bytes: int = 16 << 20  # an example image
    max_upload_pixels: int = 50_000_000
    score_floor: bool = True  # hide hits under the encoder's documented floor (`lsr.images.photos.SCORE_FLOORS`)
    collapse_duplicates: bool = True


FILTER_PARAMS = ("folder", "taken_after", "taken_before", "camera", "orientation", "type", "min_width", "min_height")


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
        self.encoder_name = searcher.encoder.provenance().get("encoder")

    def info(self) -> dict[str, Any]:
        return {"modes": list(self.modes), "max_k": self.config.max_k, "documents": self.searcher.backend.count(),
                "encoder": self.encoder_name, "images": self.files is not None, "filters": list(FILTER_PARAMS),
                "image_search": self.files is not None, "max_upload_bytes": self.config.max_upload_bytes}

    def filter(self, params: Any) -> Any:
        """The photo filter of the request's parameters (None: none); a bad one is a 422."""
        given = {name: (params.get(name) or None) for name in FILTER_PARAMS} if params is not None else {}
        try:
            return photo_filter(folder=given.get("folder"), taken_after=given.get("taken_after"),
                                taken_before=given.get("taken_before"), camera=given.get("camera"),
                                orientation=given.get("orientation"), file_type=given.get("type"),
                                min_width=_int(given.get("min_width")), min_height=_int(given.get("min_height")))
        except InvalidInputError as exc:
            raise HttpError(422, str(exc)) from None

    def search_image(self, data: bytes, k: Any = 10, page: Any = 0, filters: Any = None,
                     source: str = "upload") -> dict[str, Any]:
        """Search with an example image's bytes (decoded in memory with the indexer's limits, never stored)."""
        if len(data) > self.config.max_upload_bytes:
            raise HttpError(413, f"The image is {len(data)} bytes; the limit is {self.config.max_upload_bytes}.")
        k, page = self._paging(k, page)
        flt = self.filter(filters)
        started = time.perf_counter()
        try:
            vector = self.searcher.encode_image(data, max_pixels=self.config.max_upload_pixels,
                                                max_bytes=self.config.max_upload_bytes)
        except InvalidInputError as exc:
            raise HttpError(422, f"The image cannot be used: {exc}.") from None
        hits = self.searcher.search_vector(vector, k=k * (page + 1) + 1, retrieval=self.retrieval, filter=flt)
        took = (time.perf_counter() - started) * 1000
        expansion = self.searcher.encoder.decode(vector, self.config.expansion_tokens)
        return {"image": source, "k": k, "page": page, "took_ms": round(took, 2),
                "expansion": [[token, round(float(w), 4)] for token, w in expansion],
                **self._page(hits, k, page, "image", filters)}

    def search(self, q: str | None, k: Any = 10, mode: str | None = None, page: Any = 0,
               filters: Any = None) -> dict[str, Any]:
        text = (q or "").strip()
        if not text:
            raise HttpError(422, "q is empty; type some words to search for.")
        if len(text) > self.config.max_query_chars:
            raise HttpError(413, f"q has {len(text)} characters; the limit is {self.config.max_query_chars}.")
        mode = mode or "expanded"
        if mode not in self.modes:
            raise HttpError(422, f"mode {mode!r} is not offered by this index; choose one of {', '.join(self.modes)}.")
        k, page = self._paging(k, page)
        flt = self.filter(filters)
        expand, scoring = self.modes[mode]
        started = time.perf_counter()
        query = self.searcher.encode_query(text, expand)
        if isinstance(scoring, Rerank):
            scoring = replace(scoring, candidates=max(scoring.candidates, k * (page + 1) + 1))
        try:
            if scoring is None:  # the sparse vector already made for the expansion: encoded once
                hits = self.searcher.search_vector(query, k=k * (page + 1) + 1, retrieval=self.retrieval, filter=flt)
            else:
                hits = self.searcher.search(text, k=k * (page + 1) + 1, expand=expand, mode=scoring,
                                            retrieval=self.retrieval, filter=flt)
        except InvalidInputError as exc:
            raise HttpError(422, str(exc)) from None
        took = (time.perf_counter() - started) * 1000
        expansion = self.searcher.encoder.decode(query, self.config.expansion_tokens)
        return {"query": text, "mode": mode, "k": k, "page": page, "took_ms": round(took, 2),
                "expansion": [[token, round(float(w), 4)] for token, w in expansion],
                **self._page(hits, k, page, "text", filters)}

    def similar(self, doc_id: str | None, k: Any = 10, page: Any = 0, filters: Any = None) -> dict[str, Any]:
        if not doc_id:
            raise HttpError(422, "id is missing; give the id of an indexed image.")
        k, page = self._paging(k, page)
        flt = self.filter(filters)
        started = time.perf_counter()
        try:
            hits = self.searcher.more_like_this(doc_id, k=k * (page + 1) + 1, retrieval=self.retrieval, filter=flt)
        except KeyError:
            raise HttpError(404, f"No document {doc_id!r} in this index.") from None
        took = (time.perf_counter() - started) * 1000
        return {"similar_to": doc_id, "k": k, "page": page, "took_ms": round(took, 2),
                **self._page(hits, k, page, None, filters)}

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

    def _page(self, hits: list["Hit"], k: int, page: int, floor_kind: str | None, params: Any = None) -> dict[str, Any]:
        """One page of hits: those under the floor left out (and counted), near-duplicates folded (the
        request's ``floor=off`` / ``collapse=off`` show every hit)."""
        asked = (lambda name: str(params.get(name, "on")).lower() not in ("off", "0", "false")) if params is not None \
            else (lambda name: True)
        use_floor = floor_kind and self.config.score_floor and asked("floor")
        floor = score_floor(self.encoder_name, floor_kind) if use_floor else None
        kept = [h for h in hits if floor is None or h.score >= floor]
        collapse = self.config.collapse_duplicates and asked("collapse")
        groups = collapse_hits(kept) if collapse else [(h, []) for h in kept]
        shown = groups[k * page:k * (page + 1)]
        out = []
        for i, (hit, others) in enumerate(shown):
            entry = self._hit(hit, k * page + i + 1)
            entry["duplicates"] = others
            out.append(entry)
        return {"has_more": len(groups) > k * (page + 1), "floor": floor, "below_floor": len(hits) - len(kept),
                "hits": out}

    def _hit(self, hit: "Hit", rank: int) -> dict[str, Any]:
        meta = hit.metadata or {}
        path = meta.get("path")
        where = self.files.url_path(path) if self.files is not None else None
        tokens = hit.top_tokens(self.config.tokens_per_hit)
        return {"rank": rank, "id": hit.id, "score": round(float(hit.score), 6),
                "path": path, "caption": meta.get("caption"), "file_size": meta.get("file_size"),
                "taken": meta.get("taken"), "camera": " ".join(filter(None, (meta.get("camera_make"),
                                                                             meta.get("camera_model")))) or None,
                "width": meta.get("width"), "height": meta.get("height"),
                "tokens": [[t, round(float(c), 6)] for t, c in tokens],
                "thumb": f"/thumb/{where}" if where else None, "image": f"/image/{where}" if where else None}


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise HttpError(422, f"{value!r} is not a whole number.") from None
