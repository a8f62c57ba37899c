"""One writer per embedded index directory: an advisory lock file, ``DIR/.lock``, holding the writer's PID.

The first change to an index with a directory (`index`, `delete`) takes the lock and holds it; a `save`
by an index that holds no lock takes it for the write only; `close()` (and so `with index:`) releases it,
and the operating system releases it when the process dies, so a crashed writer never leaves a stale lock. A second writer gets `IndexLockedError` naming the PID that holds it.
Readers never take the lock: `EmbeddedIndex.load` and searching are never blocked.
"""

from __future__ import annotations

import os
from pathlib import Path

from lsr.errors import IndexLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock (a documented limitation)
    fcntl = None

LOCK_NAME = ".lock"


__all__ = ["IndexLockedError", "WriterLock"]  # IndexLockedError lives in lsr.errors; importable from here too


class WriterLock:
    """The advisory writer lock of one index directory (see the module docstring)."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / LOCK_NAME
        self._file = None

    def acquire(self) -> None:
        if self._file is not None or fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise IndexLockedError(f"The index {self.path.parent} is locked by PID {holder}, another writer: wait for "
                                   "it to close the index (or end), or write to another directory. Reading and "
                                   "searching it are not blocked.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
