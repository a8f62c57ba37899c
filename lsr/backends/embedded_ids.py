"""Compact row <-> id bookkeeping for the embedded index.

`IdTable` keeps every row's id (dead rows included, until `compact`) as one UTF-8 byte buffer with
int64 offsets, and finds live ids through their per-process 64-bit `hash()` held in a sorted int64
array with the matching int32 rows: a lookup hashes, binary-searches and compares the stored bytes,
so colliding hashes are told apart. That is the id's bytes + 20 bytes per row instead of a Python
string and a dict entry (~100 bytes). Rows added since the last fold sit in a small dict and are
merged in once they reach 1/8 of the table, so many small appends cost amortised O(1) copies each.
Hashes are never persisted; pickling re-hashes in the loading process.
"""

from __future__ import annotations

import sys
from itertools import repeat
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from lsr.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

_hash = hash  # module attribute so that tests can force collisions
_FOLD_MIN = 4096  # pending rows always allowed before a fold
_FOLD_DIV = 8  # ...or up to 1/_FOLD_DIV of the folded rows
_HASH_CHUNK = 1 << 16  # ids materialised at a time when hashing an Arrow column


def _hashes(ids: Iterable[str], n: int) -> np.ndarray:
    return np.fromiter(map(_hash, ids), dtype=np.int64, count=n)


class IdTable:
    """Row -> id for every row and id -> row for live ids; rows are appended in order."""

    def __init__(self, ids: Iterable[str] = ()):
        """A table whose rows 0..n-1 hold `ids` (distinct strings), all live."""
        self._buf = np.zeros(0, dtype=np.uint8)  # folded rows' ids, UTF-8, back to back
        self._offsets = np.zeros(1, dtype=np.int64)  # row r's id is _buf[_offsets[r]:_offsets[r + 1]]
        self._hashes = np.zeros(0, dtype=np.int64)  # ascending hashes of folded live ids...
        self._hash_rows = np.zeros(0, dtype=np.int32)  # ...and their rows; -1 once discarded
        self._n_discarded = 0  # -1 entries in _hash_rows
        self._pending: dict[str, int] = {}  # live id -> row for rows not folded yet
        self._pending_ids: list[str] = []  # ids of rows _folded_rows.. (dead ones too)
        self._pending_hashes: list[np.ndarray] = []  # their hashes, one array per `add`
        self._pending_dead: list[int] = []  # pending rows discarded since
        ids = list(ids)
        if ids:
            self.add(ids)
            self._fold()

    @classmethod
    def from_arrow(cls, ids: "pa.Array | pa.ChunkedArray | Sequence[str]") -> "IdTable":
        """A table over an Arrow string column (or a list of ids) without a Python string per row."""
        import pyarrow as pa

        if not isinstance(ids, (pa.Array, pa.ChunkedArray)):
            ids = pa.array(ids, type=pa.large_string())
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        if ids.null_count:
            raise InvalidInputError("Document ids must not be null.")
        ids = ids.cast(pa.large_string())
        n = len(ids)
        if n == 0:
            return cls()
        _, offsets_buf, data_buf = ids.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64)[ids.offset : ids.offset + n + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
        table = cls()
        table._buf = data[offsets[0] : offsets[-1]].copy()
        table._offsets = offsets - offsets[0]
        hashes = np.empty(n, dtype=np.int64)
        for lo in range(0, n, _HASH_CHUNK):
            chunk = ids.slice(lo, _HASH_CHUNK).to_pylist()
            hashes[lo : lo + len(chunk)] = _hashes(chunk, len(chunk))
        table._set_lookup(hashes, np.arange(n, dtype=np.int32))
        return table

    def to_arrow(self) -> "pa.LargeStringArray":
        """Every row's id (dead rows too) as an Arrow array sharing this table's buffers."""
        import pyarrow as pa

        self._fold()
        return pa.LargeStringArray.from_buffers(self.n_rows, pa.py_buffer(self._offsets), pa.py_buffer(self._buf))

    # ----------------------------------------------------------------------------- sizes

    @property
    def n_rows(self) -> int:
        """Rows ever added and not compacted away, dead ones included."""
        return self._folded_rows + len(self._pending_ids)

    @property
    def _folded_rows(self) -> int:
        return self._offsets.size - 1

    def __len__(self) -> int:
        """Number of live ids."""
        return self._hashes.size - self._n_discarded + len(self._pending)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.row(doc_id) >= 0

    @property
    def nbytes(self) -> int:
        """Bytes held: the arrays plus the pending dict, list, strings and row ints."""
        total = self._buf.nbytes + self._offsets.nbytes + self._hashes.nbytes + self._hash_rows.nbytes
        if self._pending_ids:  # the dict's keys are the list's strings
            total += sys.getsizeof(self._pending) + sys.getsizeof(self._pending_ids)
            total += sum(map(sys.getsizeof, self._pending_ids)) + sum(map(sys.getsizeof, self._pending.values()))
            total += sum(h.nbytes for h in self._pending_hashes) + sys.getsizeof(self._pending_dead)
            total += sum(map(sys.getsizeof, self._pending_dead))
        return int(total)

    # ----------------------------------------------------------------------------- lookups

    def id_of(self, row: int) -> str:
        """The id of `row`, live or dead."""
        row = int(row)
        if not 0 <= row < self.n_rows:
            raise IndexError(f"Row {row} is outside the table of {self.n_rows} rows.")
        folded = self._folded_rows
        if row >= folded:
            return self._pending_ids[row - folded]
        return self._folded_id(row)

    def _folded_id(self, row: int) -> str:
        offsets = self._offsets
        return self._buf[offsets.item(row) : offsets.item(row + 1)].tobytes().decode()

    def ids_of(self, rows: Iterable[int]) -> list[str]:
        """The ids of `rows`."""
        return [self.id_of(r) for r in rows]

    def row(self, doc_id: str) -> int:
        """The row of a live id, or -1."""
        row = self._pending.get(doc_id)
        if row is not None:
            return row
        h = _hash(doc_id)
        return self._probe(doc_id, h, int(self._hashes.searchsorted(h)))[0]

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        """int64 rows of live ids, -1 where absent."""
        return self._locate(ids)[0]

    def _locate(self, ids: Sequence[str], h: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of live ids (-1 if absent) and their positions in the sorted lookup (-1 if pending or absent).

        `h`, if given, holds the ids' hashes.
        """
        n = len(ids)
        rows = np.full(n, -1, dtype=np.int64)
        pos = np.full(n, -1, dtype=np.int64)
        if n == 0:
            return rows, pos
        if self._hashes.size:
            h = _hashes(ids, n) if h is None else h
            order = np.argsort(h)
            h = h[order]  # sorted keys keep the binary searches cache-friendly
            at = np.searchsorted(self._hashes, h)
            hit = np.flatnonzero(self._hashes[np.minimum(at, self._hashes.size - 1)] == h)
            for j, i, p in zip(hit.tolist(), order[hit].tolist(), at[hit].tolist()):
                rows[i], pos[i] = self._probe(ids[i], int(h[j]), p)
        if self._pending:
            pending = np.fromiter(map(self._pending.get, ids, repeat(-1)), dtype=np.int64, count=n)
            np.copyto(rows, pending, where=pending >= 0)  # a live id is either folded or pending
        return rows, pos

    def _probe(self, doc_id: str, h: int, p: int) -> tuple[int, int]:
        """(row, position) of folded live `doc_id` with hash `h`, probing from sorted position `p`; -1s if absent."""
        hashes, rows, n = self._hashes, self._hash_rows, self._hashes.size
        while p < n and hashes.item(p) == h:  # one candidate unless hashes collide
            r = rows.item(p)
            if r >= 0 and self._folded_id(r) == doc_id:
                return r, p
            p += 1
        return -1, -1

    # ----------------------------------------------------------------------------- updates

    def add(self, ids: Sequence[str]) -> np.ndarray:
        """Append `ids` (distinct) as live rows n_rows.. and return the rows they replace (-1 if new).

        A replaced row stays readable with `id_of` but is no longer found by its id. Ids that cannot
        be encoded as UTF-8 raise before anything changes.
        """
        ids = list(ids)
        try:
            "".join(ids).encode()
        except UnicodeEncodeError as exc:
            raise InvalidInputError(f"Document ids must be encodable as UTF-8: {exc}") from None
        h = _hashes(ids, len(ids))
        old = self._discard(ids, h)
        start = self.n_rows
        self._pending_ids.extend(ids)
        self._pending_hashes.append(h)
        self._pending.update(zip(ids, range(start, start + len(ids))))
        if len(self._pending_ids) > max(_FOLD_MIN, self._folded_rows // _FOLD_DIV):
            self._fold()
        return old

    def discard(self, ids: Sequence[str]) -> np.ndarray:
        """Stop finding `ids` (their rows keep their ids); returns their rows, -1 for ids not live.

        A repeated id reports the same row each time.
        """
        return self._discard(list(ids))

    def _discard(self, ids: list[str], h: np.ndarray | None = None) -> np.ndarray:
        rows, pos = self._locate(ids, h)
        hit = pos[pos >= 0]
        if hit.size:
            hit = np.unique(hit)
            self._hash_rows[hit] = -1
            self._n_discarded += hit.size
        for i in np.flatnonzero((rows >= 0) & (pos < 0)).tolist():  # live pending ids
            row = self._pending.pop(ids[i], None)
            if row is not None:
                self._pending_dead.append(row)
        return rows

    def compact(self, keep: np.ndarray | None = None) -> None:
        """Fold pending rows; with a bool `keep` mask over rows, drop the others and renumber.

        Kept rows keep their order and liveness; a dropped live row's id is no longer found.
        """
        self._fold()
        if keep is None:
            return
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_rows,):
            raise InvalidInputError(f"keep has shape {keep.shape}, the table has {self.n_rows} rows.")
        lengths = np.diff(self._offsets)
        self._buf = self._buf[np.repeat(keep, lengths)]
        offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(lengths[keep], out=offsets[1:])
        self._offsets = offsets
        rows = self._hash_rows
        live = rows >= 0
        live[live] = keep[rows[live]]
        remap = np.cumsum(keep, dtype=np.int64) - 1
        self._hashes = self._hashes[live]
        self._hash_rows = remap[rows[live]].astype(np.int32)
        self._n_discarded = 0

    def _fold(self) -> None:
        """Move pending rows into the buffer and pending live ids into the sorted lookup."""
        if not self._pending_ids:
            return
        pending_ids = self._pending_ids
        data = "".join(pending_ids).encode()
        lengths = np.fromiter(map(len, pending_ids), dtype=np.int64, count=len(pending_ids))
        if len(data) != int(lengths.sum()):  # not all ASCII: count bytes, not characters
            lengths = np.fromiter((len(s.encode()) for s in pending_ids), dtype=np.int64, count=len(pending_ids))
        live = np.ones(len(pending_ids), dtype=bool)
        live[np.array(self._pending_dead, dtype=np.int64) - self._folded_rows] = False
        new_h = np.concatenate(self._pending_hashes)[live]
        new_r = (self._folded_rows + np.flatnonzero(live)).astype(np.int32)
        self._offsets = np.concatenate([self._offsets, self._offsets[-1] + np.cumsum(lengths)])
        self._buf = np.concatenate([self._buf, np.frombuffer(data, dtype=np.uint8)])
        self._pending, self._pending_ids, self._pending_hashes, self._pending_dead = {}, [], [], []
        hashes, rows = self._hashes, self._hash_rows
        if self._n_discarded:
            live = rows >= 0
            hashes, rows = hashes[live], rows[live]
            self._n_discarded = 0
        order = np.argsort(new_h)
        at = np.searchsorted(hashes, new_h[order], side="right")
        self._hashes = np.insert(hashes, at, new_h[order])
        self._hash_rows = np.insert(rows, at, new_r[order])

    def _set_lookup(self, hashes: np.ndarray, rows: np.ndarray) -> None:
        order = np.argsort(hashes)
        self._hashes, self._hash_rows = hashes[order], rows[order].astype(np.int32)
        self._n_discarded = 0

    # ----------------------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        """Buffers and live rows only: hashes differ between processes."""
        self._fold()
        return {"buf": self._buf, "offsets": self._offsets, "live": np.sort(self._hash_rows[self._hash_rows >= 0])}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()
        self._buf, self._offsets = state["buf"], state["offsets"]
        live = state["live"].astype(np.int32)
        self._set_lookup(_hashes(map(self.id_of, live.tolist()), live.size), live)
