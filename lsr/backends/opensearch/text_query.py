"""Queries in words: ``neural_sparse`` with ``query_text`` and the index's registered remote model, so
OpenSearch encodes the query itself (through `lsr serve`); no vector is computed in this process."""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from lsr.backends.base import Hit
from lsr.backends.opensearch.client import read_with_retries, two_phase_pipeline
from lsr.backends.validate import check_k
from lsr.errors import InvalidInputError, ServiceError


class RemoteModelError(ServiceError):
    """OpenSearch could not encode a query or document with the registered model."""


class WordsIndex(Protocol):
    """What a words query needs of an index: `OpenSearchIndex` (through `OpenSearchSearching`) has it."""

    client: Any
    index_name: str
    field: str

    def remote_model(self) -> Mapping[str, Any] | None:
        ...

    def _hits(self, response: dict, sent: Any, scale: float, explain: bool) -> list[Hit]:
        ...


def text_query_body(text: str, model_id: str, field: str, k: int, mode: str = "exact",
                    method_parameters: Mapping[str, Any] | None = None) -> dict:
    """The search body of a words query: what any HTTP client can send as it is."""
    body: dict = {"size": k, "_source": {"excludes": [field]},
                  "query": {"neural_sparse": {field: {"query_text": text, "model_id": model_id}}}}
    if mode == "two_phase":
        body["search_pipeline"] = two_phase_pipeline(method_parameters)
    elif mode != "exact":
        raise InvalidInputError(f"Words queries support mode exact or two_phase, not {mode!r}.")
    return body


def search_text(index: WordsIndex, text: str, k: int = 10, model_id: str | None = None, mode: str = "exact",
                method_parameters: Mapping[str, Any] | None = None) -> list[Hit]:
    """Top-k hits for `text`, encoded by OpenSearch with `model_id` (default: the one recorded on the index)."""
    from opensearchpy.exceptions import TransportError

    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("The query is empty; type some words to search for.")
    k = check_k(k)
    record = index.remote_model() or {}
    model_id = model_id or record.get("model_id")
    if not model_id:
        raise InvalidInputError(f"No remote model is recorded on OpenSearch index {index.index_name!r}: run "
                         "`lsr opensearch register --model DIR --serve-url URL --index NAME` first.")
    body = text_query_body(text, model_id, index.field, k, mode, method_parameters)
    try:
        response = read_with_retries(index.client, index.client.search, index=index.index_name, body=body)
    except TransportError as exc:
        detail = f"{getattr(exc, 'error', exc)} {getattr(exc, 'info', '')}"[:600]
        if record.get("function_name") == "SPARSE_TOKENIZE":
            raise RemoteModelError(f"OpenSearch could not run the inference-free model {model_id}: {detail} -- "
                                   "is it deployed? (`lsr opensearch register --inference-free --model DIR`)") from exc
        if record.get("function_name") == "SPARSE_ENCODING":
            raise RemoteModelError(f"OpenSearch could not run the local model {model_id}: {detail} -- is it deployed? "
                                   "(`lsr opensearch register --local --model DIR`)") from exc
        endpoint = record.get("endpoint", "its connector's endpoint")
        raise RemoteModelError(f"OpenSearch could not encode the query with remote model {model_id} at {endpoint}: "
                               f"{detail} -- is `lsr serve` running there?") from exc
    return index._hits(response, None, 1.0, False)
