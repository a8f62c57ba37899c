"""The backend interface shared by the embedded index and OpenSearch, so the two are interchangeable."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from lsr.sparse import SparseBatch, SparseVector


@dataclass
class Hit:
    """One search result. `contributions` maps token id -> query weight * document weight."""

    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    contributions: dict[int, float] | None = None


@dataclass
class IndexReport:
    """Outcome of an `index` call: how many documents were indexed, and which failed and why."""

    indexed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    skipped: int = 0


class SparseBackend(ABC):
    """Index sparse document vectors with ids and metadata; search them with sparse queries."""

    @abstractmethod
    def index(
        self,
        ids: Sequence[str],
        vectors: SparseBatch,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> IndexReport:
        """Add or replace documents (an existing id is overwritten, never duplicated)."""

    @abstractmethod
    def search(self, query: SparseVector, k: int = 10, explain: bool = False) -> list[Hit]:
        """Top-k documents by exact dot product; `explain` fills per-token contributions."""

    def search_batch(self, queries: SparseBatch, k: int = 10, explain: bool = False) -> list[list[Hit]]:
        """Top-k for each query of a batch (backends may override with a faster path)."""
        return [self.search(q, k=k, explain=explain) for q in queries]

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id; returns how many existed."""

    @abstractmethod
    def count(self) -> int:
        """Number of live documents."""
