"""The backend contract shared by the embedded index and OpenSearch, so the two are interchangeable.

`SparseBackend` is a template: its public `index` / `search` / `search_batch` apply the rules of
`lsr.backends.validate` (identically for every backend), then call the backend's `_index` / `_search`
/ `_search_batch` with input that is already clean. Writes become durable and visible to other
readers with `commit()` (embedded: persisted to its directory; OpenSearch: refreshed); a backend used
as a context manager commits when the block ends without an error and closes in every case.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lsr.backends.validate import (DocumentVector, accept_dense, accept_documents, check_k, prepare_queries,
                                   prepare_query)
from lsr.errors import InvalidInputError
from lsr.sparse import SparseBatch, SparseVector

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from lsr.backends.fusion import Fusion


@dataclass(frozen=True)
class Hit:
    """One search result, an immutable value (`dataclasses.replace` makes a changed copy).

    `contributions` maps token id -> query weight * document weight; `tokens` the same by token name
    (filled by a searcher, which knows the vocabulary), best first. `stages` keeps the score of each stage
    of a multi-stage or fused search (e.g. ``{"sparse": 12.1, "dense": 0.83}``)."""

    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    contributions: dict[int, float] | None = None
    tokens: dict[str, float] | None = None
    stages: dict[str, float] | None = None

    def top_tokens(self, n: int = 5) -> list[tuple[str, float]]:
        """The `n` tokens that contributed most to the score, for people (empty without `tokens`)."""
        return sorted((self.tokens or {}).items(), key=lambda kv: -kv[1])[:n]


@dataclass
class IndexReport:
    """Outcome of an `index` call: how many documents were indexed, and which failed and why."""

    indexed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    skipped: int = 0


class SparseBackend(ABC):
    """Index sparse document vectors with ids and metadata; search them with sparse queries."""

    vocab_size: int

    @property
    def dense_dim(self) -> int | None:
        """The dimension of the dense vectors this index keeps beside the sparse ones (None: none)."""
        return None

    # ----------------------------------------------------------------------------- the contract

    def index(self, ids: Sequence[str], vectors: SparseBatch | Sequence[DocumentVector],
              metadata: Sequence[Mapping[str, Any] | None] | None = None, dense: Any = None) -> IndexReport:
        """Add or replace documents (an existing id is overwritten, never duplicated).

        Documents that break a rule are reported in `IndexReport.failed` and the rest are indexed; a
        malformed call (see `lsr.backends.validate`) raises `ValueError` before anything is written.
        `dense` (one row per id) keeps the frozen model's dense vectors beside the sparse ones, for
        re-ranking and hybrid search (`lsr.backends.dense_rows`); an index's first write decides
        whether it keeps them, and every later write must agree.
        """
        accepted = accept_documents(ids, vectors, metadata, self.vocab_size)
        extra: dict[str, Any] = {}
        if dense is not None:
            if self.dense_dim is None and self.count() > 0:
                raise InvalidInputError(f"{type(self).__name__} was built without dense vectors; index into a new index "
                                 "to keep them, or leave out dense=.")
            accepted, extra["dense"] = accept_dense(ids, accepted, dense, self.dense_dim)
        elif self.dense_dim is not None and accepted.ids:
            raise InvalidInputError(f"This index keeps {self.dense_dim}-d dense vectors beside the sparse ones; pass "
                             "dense= (one vector per document) with every write.")
        report = self._index(accepted.ids, accepted.vectors, accepted.metadata, **extra) if accepted.ids \
            else IndexReport()
        report.failed = {**accepted.failed, **report.failed}
        return report

    def search(self, query: SparseVector, k: int = 10, explain: bool = False, **options: Any) -> list[Hit]:
        """Top-k documents by dot product (score > 0), best first, ties by id order of the backend.

        `explain` fills each hit's per-token contributions; `options` are the backend's search options
        (OpenSearch: ``mode``, ``method_parameters``); an option a backend does not know is an error.
        """
        k = check_k(k)
        self._check_options(options)
        query = prepare_query(query, self.vocab_size)
        if query.nnz == 0:
            return []
        return self._search(query, k, explain, **options)

    def search_batch(self, queries: SparseBatch | Sequence[SparseVector], k: int = 10, explain: bool = False,
                     **options: Any) -> list[list[Hit]]:
        """Top-k for each query, the same hits as `search` on each one."""
        k = check_k(k)
        self._check_options(options)
        prepared = prepare_queries(queries, self.vocab_size)
        return self._search_batch(prepared, k, explain, **options)

    # ----------------------------------------------------------------------------- scoring modes

    def dense_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored (L2-normalised) dense vectors of `ids`, in order; KeyError names an absent id."""
        raise InvalidInputError(f"{type(self).__name__} keeps no dense vectors.")

    def search_reranked(self, query: SparseVector, dense_query: Any, k: int = 10, candidates: int = 100,
                        explain: bool = False, **options: Any) -> list[Hit]:
        """Two stages: the sparse top `candidates`, re-scored by cosine with `dense_query` (the frozen
        model's query vector); a document stage 1 missed stays missed. Scores are cosines; each hit's
        `stages` holds both."""
        k, candidates = check_k(k), check_k(candidates)
        if k > candidates:
            raise InvalidInputError(f"k ({k}) cannot exceed the stage-1 candidates ({candidates}); raise candidates.")
        self._check_options(options)
        query = prepare_query(query, self.vocab_size)
        if query.nnz == 0:
            return []
        return self._search_reranked(query, self._dense_query(dense_query), k, candidates, explain, **options)

    def search_hybrid(self, query: SparseVector, dense_query: Any, k: int = 10, fusion: "str | Fusion" = "min_max",
                      depth: int = 100, explain: bool = False, **options: Any) -> list[Hit]:
        """Sparse and dense k-NN each return their top `depth`; scores are fused as OpenSearch's search
        pipelines fuse them (`lsr.backends.fusion`: min_max / l2 / z_score with a sparse weight, or rrf)."""
        from lsr.backends.fusion import Fusion

        k, depth = check_k(k), check_k(depth)
        self._check_options(options)
        query = prepare_query(query, self.vocab_size)
        return self._search_hybrid(query, self._dense_query(dense_query), k, Fusion.parse(fusion), depth, explain,
                                   **options)

    def _dense_query(self, dense_query: Any) -> np.ndarray:
        from lsr.backends.dense_rows import check_dense, dense_problem

        if self.dense_dim is None:
            raise InvalidInputError(f"{type(self).__name__} keeps no dense vectors: index with dense= to re-rank or fuse.")
        q = check_dense(np.asarray(dense_query, dtype=np.float32).reshape(1, -1), 1, self.dense_dim)[0]
        reason = dense_problem(q)
        if reason:
            raise InvalidInputError(f"The dense query is unusable: {reason}.")
        return q / np.linalg.norm(q)

    def _search_reranked(self, query: SparseVector, q: np.ndarray, k: int, candidates: int, explain: bool,
                         **options: Any) -> list[Hit]:
        """Client-side: stage 1 through `_search`, stage 2 with the stored vectors."""
        hits = self._search(query, candidates, explain, **options)
        if not hits:
            return []
        cosines = self.dense_vectors([h.id for h in hits]) @ q
        return rescore(hits, cosines, "dense")[:k]

    def _search_hybrid(self, query: SparseVector, q: np.ndarray, k: int, fusion: "Fusion", depth: int, explain: bool,
                       **options: Any) -> list[Hit]:
        """In-process: the same result lists and formulas as OpenSearch's hybrid query + pipeline."""
        from lsr.backends.fusion import fuse

        sparse = self._search(query, depth, explain, **options) if query.nnz else []
        dense = self._dense_search(q, depth)
        fused = fuse([{h.id: h.score for h in sparse}, dense], fusion)
        by_id = {h.id: h for h in sparse}
        order = sorted(fused, key=lambda i: -fused[i])[:k]  # stable: sparse order first on ties
        hits = []
        for doc_id in order:
            hit = by_id.get(doc_id) or Hit(id=doc_id, score=0.0, metadata=self.metadata(doc_id))
            stages = {"sparse": by_id[doc_id].score if doc_id in by_id else 0.0, "dense": dense.get(doc_id, 0.0)}
            hits.append(replace(hit, score=fused[doc_id], stages=stages))
        return hits

    def _dense_search(self, q: np.ndarray, depth: int) -> dict[str, float]:
        """The top `depth` documents by dense similarity, {id: (1 + cos) / 2} (the k-NN plugin's score)."""
        raise InvalidInputError(f"{type(self).__name__} keeps no dense vectors.")

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many existed."""

    @abstractmethod
    def count(self) -> int:
        """Number of live documents."""

    @abstractmethod
    def get(self, doc_id: str) -> SparseVector:
        """The stored vector of a document (as the backend stores it); KeyError if absent."""

    @abstractmethod
    def metadata(self, doc_id: str) -> dict[str, Any]:
        """The metadata of a document; KeyError if absent."""

    @abstractmethod
    def __contains__(self, doc_id: object) -> bool:
        ...

    @abstractmethod
    def commit(self) -> None:
        """Make every write so far durable and searchable by other readers."""

    @abstractmethod
    def provenance(self) -> dict[str, Any] | None:
        """What built the index (`lsr.provenance`), or None when nothing was recorded."""

    @abstractmethod
    def record_provenance(self, record: Mapping[str, Any]) -> None:
        """Store what builds the index beside it (kept by `commit`)."""

    def close(self) -> None:
        """Release what the backend holds (files, connections); uncommitted writes may be lost."""

    def __enter__(self) -> "SparseBackend":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.close()

    # ----------------------------------------------------------------------------- for backends

    @abstractmethod
    def _index(self, ids: list[str], vectors: SparseBatch, metadata: list[dict[str, Any] | None]) -> IndexReport:
        """Write documents that passed the rules (unique valid ids, clean vectors and metadata)."""

    @abstractmethod
    def _search(self, query: SparseVector, k: int, explain: bool, **options: Any) -> list[Hit]:
        """Search with a prepared, non-empty query."""

    def _search_batch(self, queries: list[SparseVector], k: int, explain: bool, **options: Any) -> list[list[Hit]]:
        return [self._search(q, k, explain, **options) if q.nnz else [] for q in queries]

    def _check_options(self, options: Mapping[str, Any]) -> None:
        """Refuse search options this backend does not support (the embedded index is exact only)."""
        from lsr.backends.filters import check_filter

        check_filter(options.get("filter"))  # `lsr.backends.filters`: every backend runs it inside its search
        mode = options.get("mode", "exact")
        unknown = set(options) - {"mode", "filter"}
        if unknown or mode != "exact":
            what = f"option(s) {', '.join(sorted(unknown))}" if unknown else f"mode={mode!r}"
            raise InvalidInputError(f"{type(self).__name__} searches exactly and does not support {what}; "
                             "approximate and two-phase modes need the OpenSearch backend.")


def rescore(hits: list[Hit], scores: np.ndarray, stage: str) -> list[Hit]:
    """Hits re-ordered by new `scores` (ties keep the earlier order); each keeps its earlier score in
    `stages` ("sparse" for the first stage) beside the new one."""
    out = []
    for i in sorted(range(len(hits)), key=lambda j: -float(scores[j])):
        hit = hits[i]
        out.append(replace(hit, score=float(scores[i]), stages={**(hit.stages or {"sparse": hit.score}),
                                                                 stage: float(scores[i])}))
    return out
