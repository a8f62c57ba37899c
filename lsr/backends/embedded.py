"""An in-process inverted index over sparse vectors with exact dot-product scores.

Documents are appended as CSR chunks and folded lazily into a term-major posting structure (per
term: ascending int32 doc rows and float32 weights, int64 offsets of length vocab+1). Deletes and
replacements mark rows dead in a tombstone mask applied at search; `compact()` drops them. Ids live
in an `IdTable` (one UTF-8 buffer plus a sorted hash lookup), metadata as one JSON string per row.
The index is not thread-safe.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import scipy.sparse as sp

from lsr.backends.base import Hit, IndexReport, SparseBackend
from lsr.backends.dense_rows import DenseRows
from lsr.backends.embedded_filter import allowed_rows
from lsr.backends.filters import check_filter
from lsr.backends.embedded_forward import ForwardStore, TwoPhase, two_phase
from lsr.backends.embedded_ids import IdTable
from lsr.backends.embedded_lock import WriterLock
from lsr.backends.embedded_persistence import EmbeddedPersistence
from lsr.backends.validate import check_ids
from lsr.errors import InvalidInputError
from lsr.topk import dense_top_k, top_k
from lsr.sparse import VOCAB_SIZE, SparseBatch, SparseVector

if TYPE_CHECKING:
    import torch

_INT32_MAX = np.iinfo(np.int32).max
_GROUP_NNZ = 1 << 20  # entries per pending group made term-major at once (`_build`)


def _groups(chunks: list[sp.csr_matrix]) -> list[list[sp.csr_matrix]]:
    """Consecutive chunks in groups of about `_GROUP_NNZ` entries (a larger chunk split by rows)."""
    groups: list[list[sp.csr_matrix]] = [[]]
    size = 0
    for whole in chunks:
        step = max(1, whole.shape[0] * _GROUP_NNZ // max(whole.nnz, 1))
        for lo in range(0, whole.shape[0], step) if whole.nnz > _GROUP_NNZ else [None]:
            chunk = whole if lo is None else whole[lo : lo + step]
            if groups[-1] and size + chunk.nnz > _GROUP_NNZ:
                groups.append([])
                size = 0
            groups[-1].append(chunk)
            size += chunk.nnz
    return groups


class EmbeddedIndex(EmbeddedPersistence, SparseBackend):
    """Exact in-process sparse index; see the module docstring for the layout."""

    def __init__(self, vocab_size: int = VOCAB_SIZE, batch_memory_bytes: int = 32 << 20,
                 directory: str | Path | None = None, forward_store: bool = False):
        """`batch_memory_bytes` bounds the per-chunk score memory of `search_batch`; `directory` is where
        `commit()` persists the index (None: an in-memory index, for which `commit()` does nothing);
        `forward_store` keeps a document-major copy for two-phase search (`lsr.backends.embedded_forward`)."""
        if vocab_size < 1:
            raise InvalidInputError(f"vocab_size must be positive, got {vocab_size}.")
        self.vocab_size = int(vocab_size)
        self.batch_memory_bytes = int(batch_memory_bytes)
        # Built postings over rows [0, _built_rows).
        self._offsets = np.zeros(self.vocab_size + 1, dtype=np.int64)
        self._docs = np.zeros(0, dtype=np.int32)
        self._vals = np.zeros(0, dtype=np.float32)
        self._built_rows = 0
        # Pending CSR chunks for rows [_built_rows, _n_rows), in order.
        self._pending: list[sp.csr_matrix] = []
        self._n_rows = 0
        self._dead = np.zeros(0, dtype=bool)
        self._n_dead = 0
        self._ids = IdTable()  # row -> id (dead rows keep theirs until compaction), live id -> row
        self._meta: list[str | None] = []  # row -> metadata as a JSON string
        self._dt: tuple | None = None  # (doc rows, weights) of the postings as torch tensors, no copy
        self._dead_rows: np.ndarray | None = None  # cached np.flatnonzero(self._dead)
        self.directory = Path(directory) if directory is not None else None
        self._provenance: dict[str, Any] | None = None
        self._dense: DenseRows | None = None  # dense vectors aligned with rows, when the index keeps them
        self._closed = False
        self._lock: WriterLock | None = None  # taken on the first change (`lsr.backends.embedded_lock`)
        self._fwd: ForwardStore | None = ForwardStore() if forward_store else None  # row -> (terms, weights)

    @property
    def dense_dim(self) -> int | None:
        return self._dense.dim if self._dense is not None else None

    # ----------------------------------------------------------------------------- writing

    def _index(self, ids: list[str], vectors: SparseBatch, metadata: list[dict[str, Any] | None],
               dense: np.ndarray | None = None) -> IndexReport:
        """Append the (validated) documents; an existing id's old row becomes a tombstone."""
        self._check_open()
        if dense is not None and self._dense is None:
            if self._n_rows:
                raise InvalidInputError("This EmbeddedIndex was built without dense vectors; index into a new index "
                                 "to keep them, or leave out dense=.")
            self._dense = DenseRows(dense.shape[1])
        csr = vectors.csr
        if self._n_rows + len(ids) > _INT32_MAX:
            raise InvalidInputError("The index is limited to 2**31 - 1 rows; compact() or shard it.")
        meta_json = [json.dumps(m) if m is not None else None for m in metadata]
        self._take_writer_lock()  # a second writer is refused before anything changes
        # Mutation starts here: nothing above has touched the index.
        chunk = sp.csr_matrix(
            (csr.data.astype(np.float32, copy=True), csr.indices.astype(np.int32, copy=True), csr.indptr.astype(np.int64)),
            shape=csr.shape,
        )
        old = self._ids.add(ids)  # raises on ids that are not valid UTF-8, before any change
        old = old[old >= 0]
        self._dead[old] = True
        self._n_dead += old.size
        self._pending.append(chunk)
        if self._fwd is not None:
            self._fwd.append(chunk)
        self._n_rows += len(ids)
        self._dead = np.concatenate([self._dead, np.zeros(len(ids), dtype=bool)])
        self._dead_rows = None
        self._meta.extend(meta_json)
        if dense is not None:
            self._dense.append(dense)
        return IndexReport(indexed=len(ids))

    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id (tombstones); returns how many existed."""
        self._check_open()
        ids = check_ids(ids)
        self._take_writer_lock()
        rows = self._ids.discard(ids)
        rows = np.unique(rows[rows >= 0])
        if rows.size:
            self._dead[rows] = True
            self._n_dead += rows.size
            self._dead_rows = None
        return int(rows.size)

    def compact(self) -> None:
        """Fold pending documents into the postings and drop the rows of deleted documents."""
        self._build()
        if self._n_dead == 0:
            self._ids.compact()
            return
        keep = ~self._dead
        remap = np.cumsum(keep, dtype=np.int64) - 1  # monotonic, so postings stay sorted
        alive = keep[self._docs]
        cum = np.zeros(alive.size + 1, dtype=np.int64)
        np.cumsum(alive, out=cum[1:])
        self._offsets = cum[self._offsets]
        self._docs = remap[self._docs[alive]].astype(np.int32)
        self._vals = np.ascontiguousarray(self._vals[alive])
        self._ids.compact(keep)
        self._meta = [self._meta[r] for r in np.flatnonzero(keep).tolist()]
        if self._dense is not None:
            self._dense.compact(keep)
        if self._fwd is not None:
            self._fwd.compact(keep)
        self._n_rows = self._built_rows = self._ids.n_rows
        self._dead = np.zeros(self._n_rows, dtype=bool)
        self._n_dead = 0
        self._dead_rows = None
        self._dt = None

    def _build(self) -> None:
        """Merge pending chunks into the term-major postings (new rows go after old ones per term).

        Each group of pending chunks (about `_GROUP_NNZ` entries) is turned term-major on its own, small
        enough to stay in cache, and every group's term runs are then placed after the earlier ones."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        parts = []  # (per-term counts, doc rows, weights) in row order, the built postings first
        if self._docs.size:
            parts.append((np.diff(self._offsets), self._docs, self._vals))
        row0 = self._built_rows
        for group in _groups(pending):
            csc = (sp.vstack(group, format="csr") if len(group) > 1 else group[0]).tocsc()
            csc.sort_indices()
            parts.append((np.diff(csc.indptr), (csc.indices + row0).astype(np.int32, copy=False),
                          csc.data.astype(np.float32, copy=False)))
            row0 += csc.shape[0]
        del pending
        if len(parts) == 1:
            counts, docs, vals = parts[0]
            offsets = np.zeros(self.vocab_size + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
        else:
            offsets = np.zeros(self.vocab_size + 1, dtype=np.int64)
            np.cumsum(sum(c.astype(np.int64) for c, _, _ in parts), out=offsets[1:])
            docs = np.empty(int(offsets[-1]), dtype=np.int32)
            vals = np.empty(int(offsets[-1]), dtype=np.float32)
            written = offsets[:-1].copy()  # where each term's next run goes
            for counts, part_docs, part_vals in parts:
                starts = np.zeros(counts.size, dtype=np.int64)
                np.cumsum(counts[:-1], out=starts[1:])
                pos = np.repeat(written - starts, counts) + np.arange(part_docs.size, dtype=np.int64)
                docs[pos] = part_docs
                vals[pos] = part_vals
                written += counts
            del parts, pos
        self._offsets, self._docs, self._vals = offsets, docs, vals
        self._built_rows = self._n_rows
        self._dt = None

    def _postings_torch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The postings' doc rows and weights as torch tensors sharing their memory (mmap'd ones too)."""
        import torch

        self._build()
        if self._dt is None:
            with warnings.catch_warnings():  # mmap'd arrays are read-only; they are only ever read here
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                self._dt = (torch.from_numpy(self._docs), torch.from_numpy(self._vals))
        return self._dt

    # ----------------------------------------------------------------------------- reading

    def _scores(self, terms: np.ndarray, weights: np.ndarray, qptr: np.ndarray,
                allowed: np.ndarray | None = None) -> np.ndarray:
        """Dense float32 (queries, rows) exact scores, dead rows zeroed.

        Query i has terms[qptr[i]:qptr[i+1]] (ascending). Each term's posting list is added in place,
        scaled by the term's weight (torch `index_add_` on views of the postings: no copy), so every
        score is the float32 sum of w * d_w in term order, exactly as `SparseBatch.dot` computes it.
        """
        import torch

        docs, vals = self._postings_torch()
        n_q, n = qptr.size - 1, self._built_rows
        out = torch.zeros((n_q, n), dtype=torch.float32)
        starts, ends = self._offsets[terms].tolist(), self._offsets[terms + 1].tolist()
        weights = weights.tolist()
        for i in range(n_q):
            row = out[i]
            for j in range(qptr[i], qptr[i + 1]):
                if ends[j] > starts[j]:
                    row.index_add_(0, docs[starts[j]:ends[j]], vals[starts[j]:ends[j]], alpha=weights[j])
        scores = out.numpy()
        if self._n_dead:
            if self._dead_rows is None:
                self._dead_rows = np.flatnonzero(self._dead[:n])
            scores[:, self._dead_rows] = 0
        if allowed is not None:  # a filter (`lsr.backends.embedded_filter`): ruled-out rows never reach the top k
            scores[:, ~allowed[:n]] = 0
        return scores

    def _hits(self, rows: np.ndarray, scores: np.ndarray, query: SparseVector | None) -> list[Hit]:
        contributions = self._explain(rows, query) if query is not None else None
        hits = []
        for i, (r, s) in enumerate(zip(rows.tolist(), scores.tolist())):
            meta = self._meta[r]
            hits.append(
                Hit(
                    id=self._ids.id_of(r),
                    score=float(s),
                    metadata=json.loads(meta) if meta is not None else {},
                    contributions=contributions[i] if contributions is not None else None,
                )
            )
        return hits

    def _explain(self, rows: np.ndarray, query: SparseVector) -> list[dict[int, float]]:
        """Per-hit {token_id: q_w * d_w} by binary search in each query term's posting list."""
        out: list[dict[int, float]] = [{} for _ in range(rows.size)]
        if rows.size == 0:
            return out
        for t, w in zip(query.ids.tolist(), query.weights):
            s, e = int(self._offsets[t]), int(self._offsets[t + 1])
            if s == e:
                continue
            seg = self._docs[s:e]
            pos = np.minimum(np.searchsorted(seg, rows), e - s - 1)
            found = np.flatnonzero(seg[pos] == rows)
            prod = w * self._vals[s + pos[found]]  # float32, as accumulated at search
            for i, c in zip(found.tolist(), prod.tolist()):
                out[i][t] = float(c)
        return out

    def _search(self, query: SparseVector, k: int, explain: bool, **options: Any) -> list[Hit]:
        """Top-k live documents by exact dot product (score > 0 only)."""
        self._check_open()
        self._build()
        if self._built_rows == 0:
            return []
        allowed = allowed_rows(self, options.get("filter"), self._built_rows)
        if options.get("mode") == "two_phase":
            rows, top = two_phase(self, query, k, TwoPhase.parse(options.get("method_parameters")), allowed)
        else:
            rows, top = dense_top_k(self._scores(query.ids, query.weights, np.array([0, query.nnz]), allowed), k)[0]
        return self._hits(rows, top, query if explain else None)

    def forward_store(self) -> ForwardStore:
        """The forward (document -> terms) store, built from the postings if the index has none yet."""
        self._build()
        if self._fwd is None:
            self._fwd = ForwardStore.from_postings(self._offsets, self._docs, self._vals, self._built_rows)
        return self._fwd

    def _check_options(self, options: Any) -> None:
        """Search options: ``mode`` "exact" or "two_phase", and ``method_parameters`` (`TwoPhase`) with two_phase."""
        mode = options.get("mode", "exact")
        if mode == "two_phase" and not set(options) - {"mode", "method_parameters", "filter"}:
            TwoPhase.parse(options.get("method_parameters"))
            check_filter(options.get("filter"))
            return
        if "method_parameters" in options and mode == "exact":
            raise InvalidInputError("method_parameters go with mode='two_phase'.")
        super()._check_options(options)

    def _search_batch(self, queries: list[SparseVector], k: int, explain: bool, **options: Any) -> list[list[Hit]]:
        """Top-k for each query, in chunks bounded by `batch_memory_bytes`; same results as `search`."""
        self._check_open()
        if options.get("mode") == "two_phase":
            return [self._search(q, k, explain, **options) if q.nnz else [] for q in queries]
        qcsr = SparseBatch.from_vectors(queries, self.vocab_size).csr
        self._build()
        n_q, n = len(queries), self._built_rows
        if n == 0:
            return [[] for _ in range(n_q)]
        allowed = allowed_rows(self, options.get("filter"), n)
        chunk = max(1, min(n_q, self.batch_memory_bytes // (4 * n)))  # dense float32 score rows
        out: list[list[Hit]] = []
        for lo in range(0, n_q, chunk):
            hi = min(n_q, lo + chunk)
            a, b = qcsr.indptr[lo], qcsr.indptr[hi]
            scores = self._scores(qcsr.indices[a:b], qcsr.data[a:b], qcsr.indptr[lo : hi + 1] - a, allowed)
            for i, (rows, top) in enumerate(dense_top_k(scores, k)):
                out.append(self._hits(rows, top, queries[lo + i] if explain else None))
            del scores
        return out

    def dense_vectors(self, ids: Sequence[str]) -> np.ndarray:
        if self._dense is None:
            return super().dense_vectors(ids)
        return self._dense.take([self._live_row(i) for i in ids])

    def _dense_search(self, q: np.ndarray, depth: int) -> dict[str, float]:
        """Exact dense k-NN over live rows, scored (1 + cos) / 2 like the k-NN plugin."""
        from lsr.backends.fusion import knn_score

        self._check_open()
        cos = self._dense.matrix @ q
        live = np.flatnonzero(~self._dead) if self._n_dead else np.arange(cos.size)
        rows, top = top_k(live, cos[live], depth)
        return {self._ids.id_of(r): float(s) for r, s in zip(rows.tolist(), knn_score(top).tolist())}

    def get(self, doc_id: str) -> SparseVector:
        """The stored vector of a live document; KeyError if absent."""
        row = self._live_row(doc_id)
        if self._fwd is not None:
            return self._fwd.row(row)
        if row >= self._built_rows:
            start = self._built_rows
            for chunk in self._pending:
                if row < start + chunk.shape[0]:
                    s, e = chunk.indptr[row - start], chunk.indptr[row - start + 1]
                    return SparseVector(chunk.indices[s:e].copy(), chunk.data[s:e].copy())
                start += chunk.shape[0]
        pos = np.flatnonzero(self._docs == row)  # one scan of the postings; no forward index is kept
        terms = np.searchsorted(self._offsets, pos, side="right") - 1
        return SparseVector(terms.astype(np.int32), np.array(self._vals[pos], dtype=np.float32))

    def metadata(self, doc_id: str) -> dict[str, Any]:
        """The metadata of a live document; KeyError if absent."""
        meta = self._meta[self._live_row(doc_id)]
        return json.loads(meta) if meta is not None else {}

    def _live_row(self, doc_id: str) -> int:
        row = self._ids.row(doc_id) if isinstance(doc_id, str) else -1
        if row < 0:
            raise KeyError(f"Document {doc_id!r} is not in the index.")
        return row

    def count(self) -> int:
        """Number of live documents."""
        return len(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ids

    def memory_bytes(self) -> int:
        """Bytes of postings (mmap'd ones at full size), pending chunks, tombstones and ids (not metadata)."""
        total = self._offsets.nbytes + self._docs.nbytes + self._vals.nbytes + self._dead.nbytes
        total += sum(c.data.nbytes + c.indices.nbytes + c.indptr.nbytes for c in self._pending)
        return int(total + self._ids.nbytes + (self._fwd.nbytes if self._fwd is not None else 0))
