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
