"""Streaming bulk indexing into OpenSearch or Elasticsearch: generator in, per-document results out.

Built on the engine client's `parallel_bulk` / `streaming_bulk` (opensearch-py and elasticsearch-py have the
same helpers: chunking by count and bytes; 429s retried with back-off); `Engine` names what differs. On top of it:
documents are read from the caller's iterator one window at a time (bounded memory for millions of
documents); a window that hits a connection error is retried with back-off from the first document
without a result (ids are the document ids, so a retry overwrites, never duplicates); when the node
stays unreachable, `BulkAborted` carries the report of everything accepted so far.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

from lsr.backends.base import IndexReport
from lsr.backends.validate import id_problem, metadata_problem, vector_problem
from lsr.errors import ServiceError
from lsr.sparse import SparseVector
from lsr.vocab import VOCAB_SIZE

log = logging.getLogger(__name__)


Document = tuple[str, SparseVector, Mapping[str, Any] | None]


@dataclass(frozen=True)
class Engine:
    """What the shared remote-index code needs of one engine's Python client (all loaded on first use)."""

    name: str  # "OpenSearch", for messages
    helpers: Callable[[], Any]  # the client's bulk helpers module
    connection_errors: Callable[[], tuple[type, ...]]  # a lost connection or a timeout
    explain_failure: Callable[[Any, Exception], Exception | None]  # TLS / credentials trouble, made clear
    not_found: Callable[[], type]  # the client's 404 exception
    # parallel_bulk reports a lost connection per document (opensearch-py); elasticsearch-py's raises it
    # out of its thread pool, which can hang the pool: such an engine sends one request at a time
    parallel_bulk: bool = True


@dataclass
class DocResult:
    """The outcome for one document: ``status`` is "indexed", "skipped" or "failed"."""

    id: str
    status: str
    reason: str = ""


@dataclass
class BulkSettings:
    chunk_size: int = 500  # documents per _bulk request
    max_chunk_bytes: int = 8 * 1024 * 1024  # bytes per _bulk request (well under http.max_content_length)
    window: int = 5000  # documents read from the caller's iterator at a time
    max_retries: int = 5  # 429 retries per chunk (streaming_bulk)
    connection_retries: int = 5  # retries of a window after connection errors
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    skip_existing: bool = False  # op_type "create": ids already indexed are skipped, not overwritten
    threads: int = 2  # requests in flight at once (parallel_bulk above 1): client and node work overlap
    # translog fsync every 5 s instead of per request while loading; a crash can then lose acknowledged
    # documents, which re-running the same load sends again (ids are idempotent)
    async_translog: bool = True


class BulkAborted(ServiceError):
    """The node stayed unreachable; `report` has what was accepted before that."""

    def __init__(self, message: str, report: IndexReport):
        super().__init__(message)
        self.report = report


def check_document(doc_id: str, vector: SparseVector, vocab_size: int, meta: Mapping | None = None) -> str:
    """Why a document cannot be indexed (the rules of `lsr.backends.validate`), or "" when it can."""
    if not isinstance(vector, SparseVector):
        return id_problem(doc_id) or f"expected a SparseVector, got {type(vector).__name__}"
    return id_problem(doc_id) or vector_problem(vector.ids, vector.weights, vocab_size) or metadata_problem(meta)[1]


def stream_bulk(engine: Engine, client, index: str, docs: Iterable[Document],
                to_source: Callable[[str, SparseVector, Mapping | None], dict], settings: BulkSettings | None = None,
                vocab_size: int = VOCAB_SIZE) -> Iterator[DocResult]:
    """Index `docs` and yield one `DocResult` per document, in completion order."""
    lost_connection = engine.connection_errors()
    cfg = settings or BulkSettings()
    op_type = "create" if cfg.skip_existing else "index"
    it = iter(docs)
    done = IndexReport()
    while True:
        window = list(itertools.islice(it, cfg.window))
        if not window:
            return
        actions = []
        for doc_id, vector, meta in window:
            reason = check_document(doc_id, vector, vocab_size, meta)
            if reason:
                done.failed[str(doc_id)] = reason
                yield DocResult(str(doc_id), "failed", reason)
                continue
            actions.append({"_op_type": op_type, "_index": index, "_id": doc_id,
                            "_source": to_source(doc_id, vector, meta)})
        attempt = 0
        while actions:
            finished: set[str] = set()
            try:
                throttled: set[str] = set()
                unreachable: Exception | None = None
                for ok, item in _send(engine, client, actions, cfg):
                    lost = _connection_error(item, lost_connection)
                    if lost is not None:  # parallel_bulk reports it per document: retry the window below
                        unreachable = lost
                        continue
                    result = _result(ok, item)
                    if cfg.threads > 1 and engine.parallel_bulk and _status(item) == 429 and attempt < cfg.max_retries:
                        throttled.add(result.id)  # parallel_bulk does not retry 429s: do it here
                        continue
                    finished.add(result.id)
                    _count(done, result)
                    yield result
                if unreachable is not None:
                    raise unreachable
                actions = [a for a in actions if a["_id"] in throttled]
                if actions:
                    attempt += 1
                    time.sleep(min(cfg.max_backoff, cfg.initial_backoff * 2 ** (attempt - 1)))
            except lost_connection as exc:
                clear = engine.explain_failure(client, exc)  # TLS trouble: retrying cannot help
                if clear is not None:
                    raise clear from None
                actions = [a for a in actions if a["_id"] not in finished]
                attempt = attempt + 1 if not finished else 1
                if attempt > cfg.connection_retries:
                    raise BulkAborted(
                        f"{engine.name} is unreachable ({exc.__class__.__name__}) after {cfg.connection_retries} "
                        f"retries; {done.indexed} documents were indexed, {len(actions)} of the current window "
                        "were not. Start the node and re-run: document ids make the re-run overwrite, never "
                        "duplicate (skip_existing=True skips what is already there).", done) from exc
                delay = min(cfg.max_backoff, cfg.initial_backoff * 2 ** (attempt - 1))
                log.warning("bulk: connection error (%s); retrying %d documents in %.1f s (attempt %d/%d)",
                            exc.__class__.__name__, len(actions), delay, attempt, cfg.connection_retries)
                time.sleep(delay)


def _send(engine: Engine, client, actions: list[dict], cfg: BulkSettings) -> Iterator[tuple[bool, dict]]:
    """(ok, item) per action: streaming_bulk (with its 429 back-off), or parallel_bulk with `cfg.threads`."""
    helpers = engine.helpers()

    common = {"chunk_size": cfg.chunk_size, "max_chunk_bytes": cfg.max_chunk_bytes, "raise_on_error": False}
    if cfg.threads > 1 and engine.parallel_bulk:
        # Exceptions come back per document, never raised out of the pool: a raise there abandons
        # parallel_bulk's bounded pool while its feeder waits for a slot, and close() + join() then hang.
        return helpers.parallel_bulk(client, actions, thread_count=cfg.threads, queue_size=cfg.threads,
                                     raise_on_exception=False, **common)
    return helpers.streaming_bulk(client, actions, max_retries=cfg.max_retries, initial_backoff=cfg.initial_backoff,
                                  max_backoff=cfg.max_backoff, yield_ok=True, raise_on_exception=True, **common)


def _connection_error(item: dict, kinds: tuple[type, ...]) -> Exception | None:
    """The connection error a document's bulk item reports (parallel_bulk), or None."""
    exc = next(iter(item.values())).get("exception")
    return exc if isinstance(exc, kinds) else None


def _status(item: dict) -> int | None:
    return next(iter(item.values())).get("status")


def _result(ok: bool, item: dict) -> DocResult:
    op, info = next(iter(item.items()))
    doc_id = str(info.get("_id"))
    if ok:
        return DocResult(doc_id, "indexed")
    status = info.get("status")
    if status == 409 and op == "create":
        return DocResult(doc_id, "skipped", "already indexed")
    error = info.get("error") or info.get("exception") or "unknown error"
    if isinstance(error, dict):
        error = f"{error.get('type', '')}: {error.get('reason', '')}".strip(": ")
    return DocResult(doc_id, "failed", f"HTTP {status}: {error}")


def _count(report: IndexReport, result: DocResult) -> None:
    if result.status == "indexed":
        report.indexed += 1
    elif result.status == "skipped":
        report.skipped += 1
    else:
        report.failed[result.id] = result.reason


def summarise(results: Iterable[DocResult], progress: bool = False, total: int | None = None) -> IndexReport:
    """Consume per-document results into one report (with a docs/s progress bar when asked)."""
    from tqdm.auto import tqdm

    report = IndexReport()
    for result in tqdm(results, total=total, unit="doc", desc="bulk", disable=not progress, smoothing=0.1):
        _count(report, result)
    return report
