"""Search: query text -> a sparse encoder -> any backend -> ranked hits with their matched tokens.

    searcher = SparseSearcher(EmbeddedIndex.load("runs/demo/index"), D2SEncoder.from_pretrained("runs/demo/model"))
    hits = searcher.search("a dog catching a frisbee", k=5)

`options` pass through to the backend (OpenSearch: ``mode="two_phase"``, ``method_parameters=...``).
The index's recorded provenance is checked once, on the first search (`lsr.provenance.check`).

Scoring modes (one per call): ``rerank="dense" | "late" | "itm"`` with ``candidates=N`` (two-stage,
`lsr.search.rerank`), or ``hybrid="min_max:0.3" | "l2" | "z_score" | "rrf"`` with ``depth=N`` (sparse +
dense fusion, `lsr.backends.fusion`). Dense modes need an index written with ``dense=``; ``late`` a
`TokenStore`, ``itm`` an `ITMScorer`.

Set indexes (`EmbeddedSetIndex`, `OpenSearchSetIndex`) go through the same searcher: ``score_mode="max" |
"sum" | "avg"`` aggregates each document's members, and a list of phrasings is a query set
(``query_mode`` combines them): ``searcher.search(["a dog on grass", "a puppy outside"], score_mode="max")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from lsr.backends.base import Hit, SparseBackend
from lsr.encoders.sparse import SparseEncoder
from lsr.provenance import check
from lsr.search.rerank import check_reranker, itm_rerank, late_rerank
from lsr.sparse import SparseVector

if TYPE_CHECKING:
    from lsr.search.itm import ITMScorer
    from lsr.search.tokens import TokenStore


class SparseSearcher:
    """Keyword-style text search over a sparse index (pyserini style: the encoder apart from the index).

    `expand=True` uses the encoder's full query vector; `expand=False` keeps only the query's own
    tokens (no expansion), which is cheaper and closer to a keyword query.
    """

    def __init__(self, backend: SparseBackend, encoder: SparseEncoder, tokens: "TokenStore | None" = None,
                 itm: "ITMScorer | None" = None):
        """`tokens`: document token vectors for ``rerank="late"``; `itm`: the matching head for ``"itm"``."""
        self.backend, self.encoder = backend, encoder
        self.tokens, self.itm = tokens, itm
        self._checked = False

    @property
    def vocab(self):
        return self.encoder.vocab

    def encode_query(self, text: str, expand: bool = True) -> SparseVector:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("The query is empty; type some words to search for.")
        return self.encoder.encode_query([text], expand=expand)[0]

    def search(self, text: str | Sequence[str], k: int = 10, expand: bool = True, explain: bool = True,
               rerank: str | None = None, candidates: int = 100, hybrid: str | None = None, depth: int = 100,
               **options: Any) -> list[Hit]:
        """The top-k hits for one query text; with `explain`, each hit's `tokens` name what matched.

        `rerank` re-scores the sparse top `candidates`; `hybrid` fuses the sparse and dense top `depth`.
        On a set index, `text` may be a list of phrasings of one query (a query set).
        """
        self._check_provenance()
        if is_set_index(self.backend) or not isinstance(text, str):
            return self._search_sets(text, k, expand, rerank, hybrid, **options)
        query = self.encode_query(text, expand)
        if rerank is not None and hybrid is not None:
            raise ValueError("Choose one scoring mode per search: rerank= or hybrid=, not both.")
        if hybrid is not None:
            hits = self.backend.search_hybrid(query, self._dense_query(text), k, hybrid, depth, explain, **options)
        elif check_reranker(rerank) == "dense":
            hits = self.backend.search_reranked(query, self._dense_query(text), k, candidates, explain, **options)
        elif rerank is not None:
            if k > candidates:
                raise ValueError(f"k ({k}) cannot exceed the stage-1 candidates ({candidates}); raise candidates.")
            hits = self._rerank_client_side(text, rerank, self.backend.search(query, k=candidates, explain=explain,
                                                                              **options))[:k]
        else:
            hits = self.backend.search(query, k=k, explain=explain, **options)
        return self._name_tokens(hits)

    def batch_search(self, texts: Sequence[str], k: int = 10, expand: bool = True, explain: bool = False,
                     batch_size: int = 128, show_progress: bool = False, **options: Any) -> list[list[Hit]]:
        """The top-k hits of each query text; single-vector searches are encoded in batches and sent in one
        backend call, scoring modes (`rerank`, `hybrid`) go query by query."""
        if options.get("rerank") is not None or options.get("hybrid") is not None or is_set_index(self.backend):
            return [self.search(t, k=k, expand=expand, explain=explain, **options) for t in texts]
        options = {key: v for key, v in options.items() if key not in ("rerank", "hybrid", "candidates", "depth")}
        self._check_provenance()
        queries = self.encoder.encode_query(list(texts), expand=expand, batch_size=batch_size,
                                            show_progress=show_progress)
        return [self._name_tokens(hits) for hits in self.backend.search_batch(queries, k=k, explain=explain, **options)]

    def _search_sets(self, text: str | Sequence[str], k: int, expand: bool, rerank: str | None,
                     hybrid: str | None, **options: Any) -> list[Hit]:
        if not is_set_index(self.backend):
            raise ValueError(f"A query set (a list of {len(text)} phrasings) needs a set index (EmbeddedSetIndex or "
                             f"OpenSearchSetIndex, `lsr index --sets N`); {type(self.backend).__name__} holds one "
                             "vector per document: search one phrasing at a time.")
        if rerank is not None or hybrid is not None:
            raise ValueError("A set index scores with score_mode='max'|'sum'|'avg'; rerank= and hybrid= need an index "
                             "of one vector per document written with dense=.")
        phrasings = [text] if isinstance(text, str) else list(text)  # an empty set: the backend says so
        return self.backend.search([self.encode_query(t, expand) for t in phrasings], k=k, **options)

    def _dense_query(self, text: str):
        if not hasattr(self.encoder, "encode_query_dense"):
            raise ValueError(f"{type(self.encoder).__name__} has no dense query vectors; re-ranking and hybrid "
                             "search need a D2SEncoder (a frozen dense model + D2S).")
        return self.encoder.encode_query_dense([text])[0]

    def _rerank_client_side(self, text: str, rerank: str, hits: list[Hit]) -> list[Hit]:
        if rerank == "late":
            if self.tokens is None:
                raise ValueError("rerank='late' needs the documents' token vectors: SparseSearcher(..., tokens="
                                 "TokenStore.load(DIR)) (written by `lsr index --tokens`).")
            ids = [h.id for h in hits]
            doc_dense = self.backend.dense_vectors(ids) if ids else None
            return late_rerank(hits, self.encoder.encode_query_tokens([text])[0], self.tokens, doc_dense,
                               self._dense_query(text))
        if self.itm is None:
            raise ValueError("rerank='itm' needs an image-text matching head: SparseSearcher(..., itm=ITMScorer(...)).")
        return itm_rerank(hits, text, self.itm)

    def more_like_this(self, doc_id: str, k: int = 10, explain: bool = True, **options: Any) -> list[Hit]:
        """The top-k documents nearest to an indexed document, searched with its own sparse vector (image to
        image through the same index); the document itself is left out. KeyError when it is not indexed."""
        if is_set_index(self.backend):
            raise ValueError("more_like_this needs an index of one vector per document, not a set index.")
        vector = self.backend.get(doc_id)
        hits = self.backend.search(vector, k=k + 1, explain=explain, **options)
        return self._name_tokens([h for h in hits if h.id != doc_id][:k])

    def top_tokens(self, hit: Hit, n: int = 5) -> list[tuple[str, float]]:
        """The `n` tokens that contributed most to a hit's score, for people."""
        return sorted((hit.tokens or {}).items(), key=lambda kv: -kv[1])[:n]

    def _name_tokens(self, hits: list[Hit]) -> list[Hit]:
        vocab = self.encoder.vocab
        for hit in hits:
            if hit.contributions is not None:
                hit.tokens = {vocab.token(t): c for t, c in sorted(hit.contributions.items(), key=lambda kv: -kv[1])}
        return hits

    def _check_provenance(self) -> None:
        if not self._checked and hasattr(self.backend, "provenance"):
            check(self.backend.provenance(), self.encoder.provenance(), f"The index ({type(self.backend).__name__})")
            self._checked = True


def is_set_index(backend: object) -> bool:
    """Whether a backend holds set-valued documents (several member vectors per document)."""
    return bool(getattr(backend, "set_valued", False))
