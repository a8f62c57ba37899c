"""The contract of a set index: each document is a set of member vectors (several captions, regions or
phrasings), scored by aggregating its members' dot products with the query.

`EmbeddedSetIndex` and `OpenSearchSetIndex` implement it. It is a type of its own (not a `SparseBackend`):
a searcher tells the two apart by type, and a set index has no dense re-ranking or hybrid search.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from lsr.backends.base import Hit, IndexReport
    from lsr.backends.validate import DocumentVector
    from lsr.sparse import SparseBatch, SparseVector


class SetIndex(ABC):
    """Index set-valued documents; search them with one query vector or a query set (several phrasings)."""

    vocab_size: int

    @abstractmethod
    def index(self, ids: Sequence[str], member_vectors: "Sequence[SparseBatch | Sequence[DocumentVector]]",
              metadata: Sequence[Mapping[str, Any] | None] | None = None) -> "IndexReport":
        """Add or replace documents, each given as its member vectors."""

    @abstractmethod
    def search(self, query: "SparseVector | Sequence[SparseVector]", k: int = 10, score_mode: str = "max",
               query_mode: str = "sum") -> "list[Hit]":
        """The top-k documents: member scores combined by `score_mode` (max / sum / avg), a query set's
        phrasings by `query_mode`."""

    def search_batch(self, queries: "Sequence[SparseVector]", k: int = 10, score_mode: str = "max") -> "list[list[Hit]]":
        """The top-k for each single-vector query."""
        return [self.search(q, k, score_mode) for q in queries]

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many existed."""

    @abstractmethod
    def count(self) -> int:
        """Number of live documents."""
