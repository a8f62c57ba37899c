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
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from lsr.backends.validate import DocumentVector, accept_documents, check_k, prepare_queries, prepare_query
from lsr.sparse import SparseBatch, SparseVector

log = logging.getLogger(__name__)


@dataclass
class Hit:
    """One search result. `contributions` maps token id -> query weight * document weight; `tokens`
    the same by token name (filled by a searcher, which knows the vocabulary)."""

    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    contributions: dict[int, float] | None = None
    tokens: dict[str, float] | None = None


@dataclass
class IndexReport:
    """Outcome of an `index` call: how many documents were indexed, and which failed and why."""

    indexed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    skipped: int = 0


class SparseBackend(ABC):
    """Index sparse document vectors with ids and metadata; search them with sparse queries."""

    vocab_size: int

    # ----------------------------------------------------------------------------- the contract

    def index(self, ids: Sequence[str], vectors: SparseBatch | Sequence[DocumentVector],
              metadata: Sequence[Mapping[str, Any] | None] | None = None) -> IndexReport:
        """Add or replace documents (an existing id is overwritten, never duplicated).

        Documents that break a rule are reported in `IndexReport.failed` and the rest are indexed; a
        malformed call (see `lsr.backends.validate`) raises `ValueError` before anything is written.
        """
        accepted = accept_documents(ids, vectors, metadata, self.vocab_size)
        report = self._index(accepted.ids, accepted.vectors, accepted.metadata) if accepted.ids else IndexReport()
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
        mode = options.get("mode", "exact")
        unknown = set(options) - {"mode"}
        if unknown or mode != "exact":
            what = f"option(s) {', '.join(sorted(unknown))}" if unknown else f"mode={mode!r}"
            raise ValueError(f"{type(self).__name__} searches exactly and does not support {what}; "
                             "approximate and two-phase modes need the OpenSearch backend.")
