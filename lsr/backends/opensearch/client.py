"""The OpenSearch client and the JSON definitions (mappings, pipelines) that the backend sends.

Mappings and pipelines are files in the checkout's ``mappings/`` and ``pipelines/`` folders (a wheel
installs them under ``<prefix>/share/mm-lsr-opensearch/``); nothing here duplicates them in Python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Mapping

from lsr.project import project_root


def definition_dirs() -> list[Path]:
    """Where ``mappings/`` and ``pipelines/`` are looked for: the checkout, then a wheel's data files."""
    return [project_root(), Path(sys.prefix) / "share" / "mm-lsr-opensearch"]


def load_definition(kind: str, name: str) -> dict:
    """A JSON definition from the project's ``mappings/`` or ``pipelines/`` folder."""
    for root in definition_dirs():
        path = root / kind / name
        if path.is_file():
            return json.loads(path.read_text())
    looked = ", ".join(str(root / kind / name) for root in definition_dirs())
    raise FileNotFoundError(f"{kind}/{name} not found (looked in {looked}); reinstall the package, or run "
                            "from the repository checkout.")


TWO_PHASE_KEYS = ("prune_type", "prune_ratio", "expansion_rate", "max_window_size")


def two_phase_pipeline(overrides: Mapping[str, Any] | None = None) -> dict:
    """The two-phase search pipeline from ``pipelines/two_phase.json``, with `overrides` of its
    ``two_phase_parameter`` (prune_type, prune_ratio, expansion_rate, max_window_size)."""
    definition = load_definition("pipelines", "two_phase.json")
    definition.pop("description", None)
    unknown = set(overrides or {}) - set(TWO_PHASE_KEYS)
    if unknown:
        raise ValueError(f"Unknown two-phase parameters {sorted(unknown)}; use {', '.join(TWO_PHASE_KEYS)}.")
    for processor in definition["request_processors"]:
        processor["neural_sparse_two_phase_processor"]["two_phase_parameter"].update(overrides or {})
    return definition


def connect(url: str, timeout: float = 60.0):
    """An opensearch-py client for `url` (plain HTTP or HTTPS with credentials in the URL)."""
    try:
        from opensearchpy import OpenSearch
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("The OpenSearch backend needs opensearch-py: pip install 'mm-lsr-opensearch[opensearch]'") from exc
    # pool_maxsize: parallel bulk keeps several requests in flight; a pool of 1 would reconnect for each
    return OpenSearch(hosts=[url], timeout=timeout, max_retries=0, retry_on_timeout=False, serializer=_serializer(),
                      pool_maxsize=8)


def _serializer():
    """opensearch-py's JSON serializer, with orjson (about 5x faster on bulk bodies) when it is installed."""
    from opensearchpy.serializer import JSONSerializer

    try:
        import orjson
    except ImportError:
        return JSONSerializer()

    class OrjsonSerializer(JSONSerializer):
        def dumps(self, data: Any) -> str:
            if isinstance(data, str):
                return data
            try:
                return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            except TypeError:  # a type orjson does not know: the stock serializer's rules apply
                return super().dumps(data)

    return OrjsonSerializer()


class NodeUnavailableError(ConnectionError):
    """The OpenSearch node does not answer (down, restarting, or another URL)."""


READ_TRIES = 3
READ_BACKOFF_S = 0.5


def node_url(client) -> str:
    """The URL a client talks to, for messages (credentials left out)."""
    try:
        host = client.transport.hosts[0]
    except (AttributeError, IndexError):
        return "the OpenSearch node"
    scheme = "https" if host.get("use_ssl") or host.get("scheme") == "https" else "http"
    return f"{scheme}://{host.get('host', '?')}:{host.get('port', '?')}"


def read_with_retries(client, call, *args, tries: int = READ_TRIES, backoff: float = READ_BACKOFF_S, **kwargs):
    """Run a read (search, msearch, exists) and retry it on a lost connection (reads are idempotent); after
    `tries`, raise `NodeUnavailableError` naming the URL and what to do."""
    import time

    from opensearchpy.exceptions import ConnectionError as ClientConnectionError

    for attempt in range(tries):
        try:
            return call(*args, **kwargs)
        except ClientConnectionError as exc:
            if attempt + 1 == tries:
                raise NodeUnavailableError(
                    f"OpenSearch at {node_url(client)} does not answer after {tries} tries ({exc.__class__.__name__}: "
                    f"{str(getattr(exc, 'info', exc))[:200]}). Start it (`lsr opensearch start`), wait for it to "
                    "finish restarting, or check the URL (--url / OPENSEARCH_URL).") from None
            time.sleep(backoff * (attempt + 1))
    raise AssertionError("unreachable")
