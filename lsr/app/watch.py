"""Keep a folder index in sync with its folder: `lsr index-images FOLDER --watch`.

The watcher polls: every `interval` seconds it walks the folder (file names, sizes and times only: no
image is opened unless it is new or changed) and brings the index up to date with the folder indexer
(`lsr.images.indexer`): new and changed files are encoded, moved ones keep their vectors (no re-encoding
when only the path changed), deleted ones are pruned. A file modified in the last `settle_s` seconds is
left for the next round, so a copy in progress is not read half-written. Polling works the same on
local disks, network shares and synced folders (where inotify misses changes), needs no extra library,
and costs one walk per round.

Stopping is safe at any moment, a kill included: each round commits the index before it saves the
manifest, and the journal (`lsr.images.journal`) lets the next start finish what a killed round began,
so the manifest and the index never disagree once a watcher has started again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from lsr.app.folders import FolderJob
    from lsr.images.indexer import FolderIndexReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchOptions:
    """`interval`: seconds between rounds; `settle_s`: how old a file's last change must be before it is
    read; `rounds`: stop after this many rounds (None: until stopped)."""

    interval: float = 2.0
    settle_s: float = 1.0
    rounds: int | None = None


def watch(job: "FolderJob", options: WatchOptions = WatchOptions(), stop: threading.Event | None = None,
          on_round: Callable[["FolderIndexReport", float], None] | None = None) -> int:
    """Run rounds until `stop` is set (or `options.rounds` are done); returns the number of rounds.

    The first round brings the index up to date with everything that changed while no watcher ran (and
    finishes a killed run's work). `on_round(report, seconds)` hears of every round that changed
    something.
    """
    stop = stop or threading.Event()
    rounds = 0
    failed_before: dict[str, str] = {}
    while not stop.is_set():
        started = time.perf_counter()
        report = job.run(settle_s=options.settle_s, commit_unchanged=rounds == 0)
        rounds += 1
        took = time.perf_counter() - started
        if report.changed or report.failed != failed_before:
            failed_before = dict(report.failed)
            log.info("%s: %s (%.2f s)", job.folder, report.summary(), took)
            if on_round is not None:
                on_round(report, took)
        if options.rounds is not None and rounds >= options.rounds:
            break
        stop.wait(max(0.0, options.interval - took))
    return rounds


__all__ = ["WatchOptions", "watch"]
