"""The sidecar manifest of an indexed image folder: which files are in the backend, in which version.

One parquet file with columns `id, size, mtime_ns, signature`. `signature` names the encoder and the
D2S model that produced the stored vector, so changing either re-indexes every image. The manifest is
backend-neutral (it works for OpenSearch as for the embedded index) and is only ever written after the
backend holds what it describes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, NamedTuple

from lsr.errors import InvalidInputError


class Entry(NamedTuple):
    size: int
    mtime_ns: int
    signature: str


class Manifest:
    """id -> (size, mtime_ns, signature) of the documents an image folder put into a backend."""

    def __init__(self, entries: dict[str, Entry] | None = None):
        self.entries: dict[str, Entry] = dict(entries) if entries else {}

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        """The manifest at `path`, or an empty one if the file does not exist."""
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.exists():
            return cls()
        try:
            cols = pq.read_table(path, columns=["id", "size", "mtime_ns", "signature"]).to_pydict()
        except (OSError, KeyError, ValueError) as exc:
            raise InvalidInputError(f"Image manifest {path} is unreadable ({exc}); delete it to re-index the folder.") from None
        return cls({i: Entry(s, m, g) for i, s, m, g in zip(cols["id"], cols["size"], cols["mtime_ns"], cols["signature"])})

    def save(self, path: str | Path) -> None:
        """Write atomically (temporary file, then rename)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.entries)
        table = pa.table({
            "id": pa.array(ids, type=pa.string()),
            "size": pa.array([self.entries[i].size for i in ids], type=pa.int64()),
            "mtime_ns": pa.array([self.entries[i].mtime_ns for i in ids], type=pa.int64()),
            "signature": pa.array([self.entries[i].signature for i in ids], type=pa.string()),
        })
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    def is_current(self, doc_id: str, size: int, mtime_ns: int, signature: str) -> bool:
        return self.entries.get(doc_id) == Entry(size, mtime_ns, signature)

    def set(self, doc_id: str, size: int, mtime_ns: int, signature: str) -> None:
        self.entries[doc_id] = Entry(size, mtime_ns, signature)

    def discard(self, ids: Iterable[str]) -> None:
        for doc_id in ids:
            self.entries.pop(doc_id, None)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.entries
