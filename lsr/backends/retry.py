"""Reads against a search engine node, retried on a lost connection (reads are idempotent); the same rule
for the OpenSearch and Elasticsearch clients, which differ only in their exception classes."""

from __future__ import annotations

import time
from typing import Any, Callable


def retry_reads(read: Callable[[], Any], tries: int, backoff: float, catch: tuple[type, ...], lost: tuple[type, ...],
                explain: Callable[[Exception], Exception | None], unavailable: Callable[[Exception, int], Exception]):
    """`read()`, retried `tries` times when it raises one of `lost`; an error that `explain` makes clear
    (TLS, credentials) raises at once; the last lost connection raises `unavailable(exc, tries)`."""
    for attempt in range(tries):
        try:
            return read()
        except catch as exc:
            clear = explain(exc)
            if clear is not None:
                raise clear from None
            if not isinstance(exc, lost):
                raise
            if attempt + 1 == tries:
                raise unavailable(exc, tries) from None
            time.sleep(backoff * (attempt + 1))
    raise AssertionError("unreachable")
