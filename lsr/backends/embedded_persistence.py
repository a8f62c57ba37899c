"""Persistence of `EmbeddedIndex`: save / commit into its directory under the writer lock, load (memory-mapped,
checked against the manifest), close. The file layout and its crash safety live in `lsr.backends.embedded_store`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lsr.backends.dense_rows import DenseRows
from lsr.backends.embedded_forward import ForwardStore
from lsr.backends.embedded_ids import IdTable
from lsr.backends.embedded_lock import WriterLock
from lsr.backends.embedded_store import StoredPostings, read_postings, write_postings
from lsr.errors import InvalidInputError


class EmbeddedPersistence:
    """The persistence half of `EmbeddedIndex` (a mixin: it works on the index's own fields)."""

    def _take_writer_lock(self) -> None:
        """Hold the writer lock of the index's directory from its first change until `close()`."""
        if self.directory is not None and self._lock is None:
            lock = WriterLock(self.directory)
            lock.acquire()
            self._lock = lock

    def save(self, directory: str | Path | None = None) -> None:
        """Compact, then write the index to `directory` (default: its own; layout: `lsr.backends.embedded_store`)."""
        self._check_open()
        target = Path(directory) if directory is not None else self.directory
        if target is None:
            raise InvalidInputError("This in-memory index has no directory: call save(directory).")
        if self.directory is None:
            self.directory = target
        held = self._lock is not None and Path(target) == Path(self.directory)
        elsewhere = None if held else WriterLock(target)  # not this writer's directory: locked for the write only
        if elsewhere is not None:
            elsewhere.acquire()
        try:
            self.compact()
            write_postings(target, StoredPostings(self.vocab_size, self._offsets, self._docs, self._vals,
                                                  self._ids.to_arrow(), self._meta, self._provenance,
                                                  self._dense.matrix if self._dense is not None else None,
                                                  self._forward_arrays()))
        finally:
            if elsewhere is not None:
                elsewhere.release()

    def _forward_arrays(self) -> tuple | None:
        return self._fwd.arrays() if self._fwd is not None else None

    def commit(self) -> None:
        """Persist to the index's directory (an in-memory index, without one, has nothing to persist)."""
        if self.directory is not None:
            self.save()

    def close(self) -> None:
        """Drop the postings (and so the memory maps); the index cannot be used afterwards."""
        self._docs = self._vals = np.zeros(0, dtype=np.float32)
        self._dt = None
        self._pending = []
        self._closed = True
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("This EmbeddedIndex is closed; open it again with EmbeddedIndex.load(directory).")

    def provenance(self) -> dict[str, Any] | None:
        return dict(self._provenance) if self._provenance is not None else None

    def record_provenance(self, record: Mapping[str, Any]) -> None:
        self._provenance = {**record, "naming": "id"}

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True, verify: bool = True) -> "EmbeddedIndex":
        """Open a saved index; with `mmap` the postings are memory-mapped read-only. Each file is checked
        against the manifest (size; CRC-32 unless `verify` is False): damage raises `CorruptIndexError`."""
        stored = read_postings(directory, mmap=mmap, verify=verify)
        index = cls(vocab_size=stored.vocab_size, directory=directory)
        index._offsets, index._docs, index._vals = stored.offsets, stored.docs, stored.vals
        index._ids = IdTable.from_arrow(stored.ids)
        index._meta = stored.metadata
        index._provenance = stored.provenance
        if stored.forward is not None:
            index._fwd = ForwardStore(*stored.forward)
        if stored.dense is not None:
            index._dense = DenseRows(stored.dense.shape[1], stored.dense)
        index._n_rows = index._built_rows = index._ids.n_rows
        index._dead = np.zeros(index._n_rows, dtype=bool)
        return index
