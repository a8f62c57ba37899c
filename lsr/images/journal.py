"""The write-ahead note that keeps a folder's manifest and its index in agreement across a kill.

Before the indexer writes or deletes documents it appends their ids to ``<manifest>.journal`` (flushed
and fsynced); once the backend has committed and the manifest is saved, the journal is removed. A run
that finds a journal knows that the process before it died between those points, so for each noted id
the backend and the manifest may disagree: the id is dropped from the manifest (an existing file is
looked at again: re-indexed under the same id, from the feature cache) and, if its file is gone, deleted
from the index (deleting an absent id is harmless). Nothing is lost and nothing is indexed twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable


class Journal:
    """Ids a run is about to change, noted before it changes them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def pending(self) -> set[str]:
        """Ids noted by a run that did not finish (empty when the last run finished)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return set()
        out = set()
        for line in text.split("\n"):
            try:
                out.add(json.loads(line))
            except ValueError:  # the torn last line of a kill: its ids were not written yet
                continue
        return out

    def note(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, "".join(json.dumps(i) + "\n" for i in ids).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
