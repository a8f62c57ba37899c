"""Search: query text -> a sparse encoder -> any index -> ranked, immutable hits with their matched tokens.

    searcher = Searcher(lsr.open_index("runs/demo/index"), lsr.load_encoder("runs/demo/model"))
    hits = searcher.search("a dog catching a frisbee", k=5)
    hits = searcher.search("a dog catching a frisbee", k=5, mode=Hybrid("min_max", weight=0.3))

A scoring `mode` (`lsr.search.modes`: `Rerank`, `Hybrid`, `SetScoring`, or their string shorthands) and a
`Retrieval` (exact, OpenSearch's two-phase or ANN) are typed values. A mode that needs the dense query
vector gets it from the same pass of the frozen dense model that makes the sparse one. The index's recorded
provenance is checked once, on the first search (`lsr.provenance.check`).

Set indexes (`lsr.backends.set_base.SetIndex`) go through the same call: a list of phrasings is a query set,
``searcher.search(["a dog on grass", "a puppy outside"], mode=SetScoring("max"))``.

`filter=` (`lsr.backends.filters.Filter`) restricts any search to the documents it allows, inside the
backend (before the top-k cut); `search_image` searches with an example image's own vector.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

from lsr.backends.base import Hit, SparseBackend
from lsr.backends.set_base import SetIndex
from lsr.encoders.sparse import SparseEncoder
from lsr.errors import InvalidInputError
from lsr.provenance import check
from lsr.search.modes import Hybrid, Mode, Rerank, Retrieval, SetScoring, parse_mode
from lsr.search.rerank import itm_rerank, late_rerank
from lsr.sparse import SparseVector

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.Image import Image

    from lsr.backends.filters import Filter
    from lsr.search.itm import ITMScorer
    from lsr.search.tokens import TokenStore

EXACT = Retrieval()


class SparseSearcher:
    """Keyword-style text search over a sparse index (pyserini style: the encoder apart from the index).

    `expand=True` uses the encoder's full query vector; `expand=False` keeps only the query's own
    tokens (no expansion), which is cheaper and closer to a keyword query.
    """

    def __init__(self, index: SparseBackend | SetIndex, encoder: SparseEncoder, tokens: "TokenStore | None" = None,
                 itm: "ITMScorer | None" = None):
        """`tokens`: document token vectors for ``Rerank("late")``; `itm`: the matching head for ``Rerank("itm")``."""
        self.index, self.encoder = index, encoder
        self.tokens, self.itm = tokens, itm
        self._checked = False

    @property
    def backend(self) -> SparseBackend | SetIndex:
        """The index searched (the name of earlier releases)."""
        return self.index

    @property
    def vocab(self):
        return self.encoder.vocab

    def encode_query(self, text: str, expand: bool = True) -> SparseVector:
        """The sparse vector of one query text."""
        return self.encoder.encode_query([_check_text(text)], expand=expand)[0]

    def search(self, query: str | Sequence[str], k: int = 10, *, expand: bool = True, explain: bool = True,
               mode: Mode | str | None = None, retrieval: Retrieval = EXACT, filter: "Filter | None" = None) -> list[Hit]:
        """The top-k hits for one query text (best first); with `explain`, each hit's `tokens` name what matched.

        `mode` picks the scoring (`Rerank`, `Hybrid`, `SetScoring` or a shorthand such as
        ``"hybrid:min_max:0.3"``; None: the sparse dot product). On a set index `query` may be a list of
        phrasings of one query (a query set).
        """
        mode = parse_mode(mode)
        self._check_provenance()
        if isinstance(self.index, SetIndex) or isinstance(mode, SetScoring) or not isinstance(query, str):
            if filter:
                raise InvalidInputError("Filters work on an index of one vector per document, not a set index.")
            return self._search_sets(query, k, expand, mode, retrieval)
        options = _with_filter(retrieval.backend_options(), filter)
        if filter and isinstance(mode, Rerank) and mode.by == "dense" and \
                type(self.index)._search_reranked is not SparseBackend._search_reranked:
            raise InvalidInputError(f"{type(self.index).__name__} re-ranks inside the engine without filters yet; "
                                    "search with the filter and no re-ranking, or use the embedded index.")
        if isinstance(mode, Hybrid) and filter:
            raise InvalidInputError("A filter works with sparse search and dense re-ranking, not hybrid fusion "
                                    "(its dense k-NN half is unfiltered); drop the filter or the hybrid mode.")
        if isinstance(mode, Hybrid):
            sparse, dense = self._encode_with_dense(query, expand)
            hits = self.index.search_hybrid(sparse, dense, k, mode.fusion, mode.depth, explain, **options)
        elif isinstance(mode, Rerank) and mode.by == "dense":
            sparse, dense = self._encode_with_dense(query, expand)
            hits = self.index.search_reranked(sparse, dense, k, mode.candidates, explain, **options)
        elif isinstance(mode, Rerank):
            if k > mode.candidates:
                raise InvalidInputError(f"k ({k}) cannot exceed the stage-1 candidates ({mode.candidates}); "
                                        "raise candidates.")
            stage1 = self.index.search(self.encode_query(query, expand), k=mode.candidates, explain=explain, **options)
            hits = self._rerank_client_side(query, mode.by, stage1)[:k]
        else:
            hits = self.index.search(self.encode_query(query, expand), k=k, explain=explain, **options)
        return self._name_tokens(hits)

    def batch_search(self, texts: Sequence[str], k: int = 10, *, expand: bool = True, explain: bool = False,
                     mode: Mode | str | None = None, retrieval: Retrieval = EXACT, batch_size: int = 128,
                     show_progress: bool = False, filter: "Filter | None" = None) -> list[list[Hit]]:
        """The top-k hits of each query text; sparse searches are encoded in batches and sent in one
        backend call, scoring modes and set indexes go query by query."""
        mode = parse_mode(mode)
        if mode is not None or isinstance(self.index, SetIndex):
            return [self.search(t, k=k, expand=expand, explain=explain, mode=mode, retrieval=retrieval, filter=filter)
                    for t in texts]
        self._check_provenance()
        queries = self.encoder.encode_query([_check_text(t) for t in texts], expand=expand, batch_size=batch_size,
                                            show_progress=show_progress)
        options = _with_filter(retrieval.backend_options(), filter)
        return [self._name_tokens(hits) for hits in self.index.search_batch(queries, k=k, explain=explain, **options)]

    def search_vector(self, vector: SparseVector, k: int = 10, *, explain: bool = True,
                      retrieval: Retrieval = EXACT, filter: "Filter | None" = None) -> list[Hit]:
        """The top-k hits for a sparse vector: one `encode_query` / `encode_image` made (so a caller that shows
        the query's terms encodes it once), or another document's."""
        self._check_provenance()
        if isinstance(self.index, SetIndex):
            if filter:
                raise InvalidInputError("Filters work on an index of one vector per document, not a set index.")
            return self.index.search(vector, k=k)
        options = _with_filter(retrieval.backend_options(), filter)
        return self._name_tokens(self.index.search(vector, k=k, explain=explain, **options))

    def encode_image(self, image: "str | Path | bytes | Image", max_pixels: int | None = None,
                     max_bytes: int | None = None) -> SparseVector:
        """The sparse vector of an example image (a file, its bytes or a PIL image), decoded safely as the
        indexer decodes (`lsr.encoders.image_io`: pixel and byte limits, EXIF orientation, any mode to RGB)."""
        from lsr.encoders.image_io import DEFAULT_MAX_PIXELS, decode_rgb, open_rgb, to_rgb

        limit = max_pixels or DEFAULT_MAX_PIXELS
        if isinstance(image, (bytes, bytearray)):
            picture = decode_rgb(bytes(image), max_pixels=limit, max_bytes=max_bytes, draft_size=512).image
        elif isinstance(image, str) or hasattr(image, "__fspath__"):
            picture = open_rgb(image, max_pixels=limit, draft_size=512).image
        elif hasattr(image, "convert") and hasattr(image, "size"):
            picture = to_rgb(image)
        else:
            raise InvalidInputError(f"An example image is a file path, bytes or a PIL image, not {type(image).__name__}.")
        try:
            return self.encoder.encode_document([picture])[0]
        except InvalidInputError:
            raise
        except (AttributeError, TypeError, NotImplementedError):
            raise InvalidInputError(f"{type(self.encoder).__name__} does not encode images; search by image needs an "
                                    "image encoder (efficientnet-labels, BLIP or ALBEF with a D2S model).") from None

    def search_image(self, image: "str | Path | bytes | Image", k: int = 10, *, explain: bool = True,
                     retrieval: Retrieval = EXACT, filter: "Filter | None" = None) -> list[Hit]:
        """The top-k documents nearest to an example image that need not be in the index (`encode_image`)."""
        return self.search_vector(self.encode_image(image), k=k, explain=explain, retrieval=retrieval, filter=filter)

    def more_like_this(self, doc_id: str, k: int = 10, *, explain: bool = True, retrieval: Retrieval = EXACT,
                       filter: "Filter | None" = None) -> list[Hit]:
        """The top-k documents nearest to an indexed document, searched with its own sparse vector (image to
        image through the same index); the document itself is left out. KeyError when it is not indexed."""
        if isinstance(self.index, SetIndex):
            raise InvalidInputError("more_like_this needs an index of one vector per document, not a set index.")
        hits = self.search_vector(self.index.get(doc_id), k=k + 1, explain=explain, retrieval=retrieval, filter=filter)
        return [h for h in hits if h.id != doc_id][:k]

    def top_tokens(self, hit: Hit, n: int = 5) -> list[tuple[str, float]]:
        """The `n` tokens that contributed most to a hit's score, for people (`Hit.top_tokens`)."""
        return hit.top_tokens(n)

    # ----------------------------------------------------------------------------- internals

    def _search_sets(self, query: str | Sequence[str], k: int, expand: bool, mode: Mode | None,
                     retrieval: Retrieval) -> list[Hit]:
        if not isinstance(self.index, SetIndex):
            raise InvalidInputError(
                f"A query set or SetScoring needs a set index (EmbeddedSetIndex or OpenSearchSetIndex, `lsr index "
                f"--sets N`); {type(self.index).__name__} holds one vector per document: search one phrasing at a time.")
        if mode is not None and not isinstance(mode, SetScoring):
            raise InvalidInputError("A set index scores with SetScoring('max' | 'sum' | 'avg'); Rerank and Hybrid need "
                                    "an index of one vector per document written with dense=.")
        if retrieval != EXACT:
            raise InvalidInputError("A set index searches exactly; leave out retrieval=.")
        scoring = mode or SetScoring()
        phrasings = [query] if isinstance(query, str) else list(query)  # an empty set: the index says so
        return self.index.search([self.encode_query(t, expand) for t in phrasings], k=k,
                                 score_mode=scoring.members, query_mode=scoring.phrasings)

    def _encode_with_dense(self, text: str, expand: bool):
        encode = getattr(self.encoder, "encode_query_with_dense", None)
        if encode is None:
            raise InvalidInputError(f"{type(self.encoder).__name__} has no dense query vectors; re-ranking and hybrid "
                                    "search need a D2SEncoder (a frozen dense model + D2S).")
        sparse, dense = encode([_check_text(text)], expand=expand)
        return sparse[0], dense[0]

    def _rerank_client_side(self, text: str, by: str, hits: list[Hit]) -> list[Hit]:
        if by == "late":
            if self.tokens is None:
                raise InvalidInputError("Rerank('late') needs the documents' token vectors: SparseSearcher(..., tokens="
                                        "TokenStore.load(DIR)) (written by `lsr index --tokens`).")
            ids = [h.id for h in hits]
            doc_dense = self.index.dense_vectors(ids) if ids else None
            dense = self.encoder.encode_query_dense([text])[0]  # type: ignore[attr-defined] - a D2SEncoder's
            return late_rerank(hits, self.encoder.encode_query_tokens([text])[0], self.tokens, doc_dense, dense)
        if self.itm is None:
            raise InvalidInputError("Rerank('itm') needs an image-text matching head: SparseSearcher(..., "
                                    "itm=ITMScorer(...)).")
        return itm_rerank(hits, text, self.itm)

    def _name_tokens(self, hits: list[Hit]) -> list[Hit]:
        vocab = self.encoder.vocab
        return [hit if hit.contributions is None else
                replace(hit, tokens={vocab.token(t): c for t, c in sorted(hit.contributions.items(), key=lambda kv: -kv[1])})
                for hit in hits]

    def _check_provenance(self) -> None:
        if not self._checked and hasattr(self.index, "provenance"):
            check(self.index.provenance(), self.encoder.provenance(), f"The index ({type(self.index).__name__})")
            self._checked = True


Searcher = SparseSearcher  # the short name the application layer exports


def _with_filter(options: dict, filter: "Filter | None") -> dict:
    """Backend search options with the filter added (none for no filter or an empty one)."""
    return {**options, "filter": filter} if filter else options


def _check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("The query is empty; type some words to search for.")
    return text
