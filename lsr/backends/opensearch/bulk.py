"""Streaming bulk indexing into OpenSearch: the backend-neutral `lsr.backends.bulk` with opensearch-py
(`ENGINE`); the names stay importable from here."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Mapping

from lsr.backends.bulk import (BulkAborted, BulkSettings, DocResult, Document, Engine,  # noqa: F401
                               check_document, summarise)
from lsr.backends.bulk import stream_bulk as _stream_bulk
from lsr.backends.opensearch.client import explain_failure
from lsr.sparse import SparseVector
from lsr.vocab import VOCAB_SIZE


def _helpers():
    from opensearchpy import helpers

    return helpers


def _connection_errors() -> tuple[type, ...]:
    from opensearchpy.exceptions import ConnectionError as OSConnectionError, ConnectionTimeout

    return (OSConnectionError, ConnectionTimeout)


def _not_found() -> type:
    from opensearchpy.exceptions import NotFoundError

    return NotFoundError


ENGINE = Engine("OpenSearch", _helpers, _connection_errors, explain_failure, _not_found)


def stream_bulk(client, index: str, docs: Iterable[Document], to_source: Callable[[str, SparseVector, Mapping | None], dict],
                settings: BulkSettings | None = None, vocab_size: int = VOCAB_SIZE) -> Iterator[DocResult]:
    """Index `docs` into an OpenSearch index; one `DocResult` per document (`lsr.backends.bulk.stream_bulk`)."""
    return _stream_bulk(ENGINE, client, index, docs, to_source, settings, vocab_size)
