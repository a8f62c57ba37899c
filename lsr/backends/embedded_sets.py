"""Set-valued documents in-process: each member's sparse vector is a row of an inner `EmbeddedIndex`,
and a set's score aggregates its members' exact scores as OpenSearch's ``nested`` query does
(`lsr.search.sets.aggregate`: max / sum / avg over the members that match).

Query-side sets (several phrasings of one query) combine the per-set scores of each phrasing: ``max``
(the best phrasing; OpenSearch: ``dis_max``), ``sum`` (``bool`` ``should``) or ``avg`` (the sum over
all phrasings divided by their number).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lsr.backends.base import Hit, IndexReport
from lsr.backends.embedded import EmbeddedIndex
from lsr.backends.set_base import SetIndex
from lsr.backends.validate import (SCORE_MODES, DocumentVector, accept_sets, check_ids, check_k,
                                   prepare_query_set)
from lsr.errors import InvalidInputError, MissingFileError
from lsr.sparse import VOCAB_SIZE, SparseBatch, SparseVector
from lsr.topk import dense_top_k

SETS_FILE = "sets.json"


class EmbeddedSetIndex(SetIndex):
    """Exact search over set-valued documents (see the module docstring)."""


    def __init__(self, vocab_size: int = VOCAB_SIZE, directory: str | Path | None = None):
        self.vocab_size = int(vocab_size)
        self.directory = Path(directory) if directory is not None else None
        self._members = EmbeddedIndex(vocab_size=self.vocab_size)  # member ids: serial numbers as strings
        self._member_set = np.zeros(0, dtype=np.int64)  # member row -> set row
        self._ids: list[str] = []  # set row -> id (dead rows keep theirs until save)
        self._meta: list[dict[str, Any] | None] = []
        self._first: list[int] = []  # set row -> serial of its first member
        self._count: list[int] = []  # set row -> number of members
        self._row: dict[str, int] = {}  # live id -> set row
        self._next = 0

    def index(self, ids: Sequence[str], member_vectors: Sequence[SparseBatch | Sequence[DocumentVector]],
              metadata: Sequence[Mapping[str, Any] | None] | None = None) -> IndexReport:
        """Add or replace set documents; a set with a bad member fails with the member named."""
        accepted = accept_sets(ids, member_vectors, metadata, self.vocab_size)
        self.delete([i for i in accepted.ids if i in self._row])
        member_ids, parents = [], []
        for doc_id, members, meta in zip(accepted.ids, accepted.members, accepted.metadata):
            row = len(self._ids)
            self._ids.append(doc_id)
            self._meta.append(meta)
            self._first.append(self._next)
            self._count.append(len(members))
            self._row[doc_id] = row
            member_ids += [str(self._next + j) for j in range(len(members))]
            parents += [row] * len(members)
            self._next += len(members)
        if member_ids:
            self._members.index(member_ids, SparseBatch.vstack(accepted.members))
            self._member_set = np.concatenate([self._member_set, np.asarray(parents, dtype=np.int64)])
        return IndexReport(indexed=len(accepted.ids), failed=accepted.failed)

    def delete(self, ids: Sequence[str]) -> int:
        found = 0
        for doc_id in check_ids(ids):
            row = self._row.pop(doc_id, None)
            if row is not None:
                self._members.delete([str(self._first[row] + j) for j in range(self._count[row])])
                found += 1
        return found

    def count(self) -> int:
        return len(self._row)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._row

    def set_scores(self, queries: Sequence[SparseVector], score_mode: str = "max", query_mode: str = "sum") -> np.ndarray:
        """Every set's score for a query set (one query: its scores), float32; 0 = no member matches."""
        if score_mode not in SCORE_MODES or query_mode not in SCORE_MODES:
            raise InvalidInputError(f"Unknown score mode; choose one of {', '.join(SCORE_MODES)}.")
        prepared = prepare_query_set(queries, self.vocab_size)
        out = np.zeros(len(self._ids), dtype=np.float32)
        self._members._build()
        n_rows = self._members._built_rows
        for i, q in enumerate(prepared):
            if q.nnz == 0 or n_rows == 0:
                continue
            s = self._members._scores(q.ids, q.weights, np.array([0, q.nnz]))[0]
            per_set = self._aggregate(s, self._member_set[:n_rows], score_mode)
            if query_mode == "max":
                np.maximum(out, per_set, out=out)
            else:
                out += per_set
        if query_mode == "avg" and prepared:
            out /= len(prepared)
        return out

    def _aggregate(self, member_scores: np.ndarray, parents: np.ndarray, mode: str) -> np.ndarray:
        match = member_scores > 0
        out = np.zeros(len(self._ids), dtype=np.float32)
        if mode == "max":
            np.maximum.at(out, parents[match], member_scores[match])
            return out
        np.add.at(out, parents[match], member_scores[match])
        if mode == "avg":
            counts = np.bincount(parents[match], minlength=len(self._ids))
            out = np.where(counts > 0, out / np.maximum(counts, 1), 0).astype(np.float32)
        return out

    def search(self, query: SparseVector | Sequence[SparseVector], k: int = 10, score_mode: str = "max",
               query_mode: str = "sum") -> list[Hit]:
        """The top-k sets (score > 0) for a query, or for a query set (a list of phrasings)."""
        k = check_k(k)
        queries = [query] if isinstance(query, SparseVector) else list(query)
        scores = self.set_scores(queries, score_mode, query_mode)
        if scores.size == 0:
            return []
        rows, top = dense_top_k(scores[None, :], k)[0]
        return [Hit(id=self._ids[r], score=float(s), metadata=dict(self._meta[r] or {}))
                for r, s in zip(rows.tolist(), top.tolist())]


    # ----------------------------------------------------------------------------- persistence

    def save(self, directory: str | Path | None = None) -> None:
        """Drop deleted sets and members, then write `members/` (an EmbeddedIndex) and `sets.json`."""
        target = Path(directory) if directory is not None else self.directory
        if target is None:
            raise InvalidInputError("This in-memory set index has no directory: call save(directory).")
        self._members._build()
        keep_members = ~self._members._dead[: self._members._n_rows]
        alive = np.zeros(len(self._ids), dtype=bool)
        alive[list(self._row.values())] = True
        remap = np.cumsum(alive) - 1
        self._member_set = remap[self._member_set[keep_members]]
        keep = np.flatnonzero(alive).tolist()
        self._ids, self._meta = [self._ids[r] for r in keep], [self._meta[r] for r in keep]
        self._first, self._count = [self._first[r] for r in keep], [self._count[r] for r in keep]
        self._row = {doc_id: r for r, doc_id in enumerate(self._ids)}
        self._members.save(target / "members")
        record = {"ids": self._ids, "metadata": self._meta, "first": self._first, "count": self._count,
                  "next": self._next, "member_set": self._member_set.tolist()}
        tmp = target / (SETS_FILE + ".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, target / SETS_FILE)
        self.directory = self.directory or target

    def commit(self) -> None:
        if self.directory is not None:
            self.save()

    @classmethod
    def load(cls, directory: str | Path) -> "EmbeddedSetIndex":
        path = Path(directory)
        if not (path / SETS_FILE).is_file():
            raise MissingFileError(f"No {SETS_FILE} in {path}; is this a saved EmbeddedSetIndex?")
        record = json.loads((path / SETS_FILE).read_text())
        members = EmbeddedIndex.load(path / "members")
        index = cls(vocab_size=members.vocab_size, directory=path)
        index._members = members
        index._ids, index._meta = record["ids"], record["metadata"]
        index._first, index._count, index._next = record["first"], record["count"], record["next"]
        index._member_set = np.asarray(record["member_set"], dtype=np.int64)
        index._row = {doc_id: r for r, doc_id in enumerate(index._ids)}
        return index

    def __enter__(self) -> "EmbeddedSetIndex":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
