"""ML Commons on the node: a remote sparse encoding model that calls `lsr serve`, so OpenSearch takes words.

`register_remote_model` (behind `lsr opensearch register`) trusts exactly the serve endpoint, creates
(or finds) a connector and a remote model for it, deploys the model and returns its id. The connector
follows ML Commons' remote-model conventions: the default embedding pre-process function turns
`query_text` / the ingest field into `{"texts": [...]}`; the endpoint answers one {token: weight} map per
text, which `neural_sparse` scores against the `rank_features` field and `sparse_encoding` stores.
Every step looks for what exists first, so re-running is safe and reuses the model.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from lsr.errors import ServiceError

log = logging.getLogger(__name__)

ML = "/_plugins/_ml"
TRUSTED_SETTING = "plugins.ml_commons.trusted_connector_endpoints_regex"


@dataclass
class RemoteModel:
    model_id: str
    connector_id: str
    endpoint: str
    name: str


def endpoint_url(serve_url: str, expand: bool = True, naming: str = "wordpiece") -> str:
    """The /v1/sparse URL the connector calls (its query string picks expansion and token naming)."""
    return f"{serve_url.rstrip('/')}/v1/sparse?expand={'true' if expand else 'false'}&naming={naming}"


def _request(client, method: str, path: str, body: Any = None) -> dict:
    return client.transport.perform_request(method, path, body=body)


def trust_endpoint(client, endpoint: str) -> list[str]:
    """Add a regex matching exactly `endpoint` to the trusted connector endpoints (others are kept)."""
    pattern = "^" + re.escape(endpoint) + "$"
    settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    current = None
    for scope in ("persistent", "transient", "defaults"):
        if TRUSTED_SETTING in settings.get(scope, {}):
            current = settings[scope][TRUSTED_SETTING]
            break
    patterns = list(current) if isinstance(current, list) and current and settings.get("persistent", {}).get(
        TRUSTED_SETTING) is not None else []
    if pattern not in patterns:
        patterns.append(pattern)
        client.cluster.put_settings(body={"persistent": {TRUSTED_SETTING: patterns}})
    return patterns


def _find(client, kind: str, name: str) -> list[dict]:
    """Hits of `kind` ("connectors" or "models") whose name is `name`."""
    body = {"query": {"term": {"name.keyword": name}}, "size": 100}
    try:
        response = _request(client, "POST", f"{ML}/{kind}/_search", body)
    except Exception as exc:  # noqa: BLE001 - the system index does not exist before the first one
        if "index_not_found" in str(exc) or "404" in str(exc):
            return []
        raise
    return [h for h in response.get("hits", {}).get("hits", []) if h["_source"].get("name") == name]


def connector_body(name: str, endpoint: str) -> dict:
    return {
        "name": name,
        "description": "lsr serve: texts to D2S sparse token weights",
        "version": "1",
        "protocol": "http",
        "parameters": {"endpoint": endpoint},
        "credential": {"key": "unused"},  # required by ML Commons; lsr serve on loopback takes no credential
        "actions": [{
            "action_type": "predict",
            "method": "POST",
            "url": endpoint,
            "headers": {"Content-Type": "application/json"},
            "request_body": '{"texts": ${parameters.input}}',
            "pre_process_function": "connector.pre_process.default.embedding",
        }],
    }


def _wait_task(client, task_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = _request(client, "GET", f"{ML}/tasks/{task_id}")
        if task.get("state") in ("COMPLETED", "FAILED", "COMPLETED_WITH_ERROR"):
            if task["state"] != "COMPLETED":
                raise ServiceError(f"ML Commons task {task_id} ended {task['state']}: {task.get('error')}")
            return task
        if time.monotonic() > deadline:
            raise ServiceError(f"ML Commons task {task_id} did not finish in {timeout:.0f} s (state {task.get('state')}).")
        time.sleep(0.5)


def loaded(client, model_id: str) -> bool:
    """Whether a node has the model in memory (its profile), which is what `_predict` needs. The stored
    `model_state` is not enough: after a node restart it still says DEPLOYED until ML Commons' auto-redeploy
    reaches the model, and a prediction in between fails with "Model not ready yet"."""
    nodes = _request(client, "GET", f"{ML}/profile/models/{model_id}").get("nodes", {})
    return any(node.get("models", {}).get(model_id, {}).get("model_state") == "DEPLOYED" for node in nodes.values())


def deploy(client, model_id: str, timeout: float = 120.0) -> None:
    """Deploy the model unless a node already has it loaded, and wait until one has."""
    if loaded(client, model_id):
        return
    task = _request(client, "POST", f"{ML}/models/{model_id}/_deploy")
    _wait_task(client, task["task_id"], timeout)
    deadline = time.monotonic() + timeout
    while not loaded(client, model_id):
        if time.monotonic() > deadline:
            raise ServiceError(f"ML Commons model {model_id} was deployed but no node loaded it in {timeout:.0f} s.")
        time.sleep(0.5)


def register_remote_model(client, serve_url: str, name: str = "lsr-d2s", expand: bool = True,
                          naming: str = "wordpiece") -> RemoteModel:
    """Trust the endpoint, find or create the connector and the remote model, deploy it (module docstring)."""
    endpoint = endpoint_url(serve_url, expand, naming)
    trust_endpoint(client, endpoint)
    connectors = [c for c in _find(client, "connectors", name)
                  if c["_source"].get("parameters", {}).get("endpoint") == endpoint]
    if connectors:
        connector_id = connectors[0]["_id"]
    else:
        connector_id = _request(client, "POST", f"{ML}/connectors/_create", connector_body(name, endpoint))["connector_id"]
        log.info("created connector %s for %s", connector_id, endpoint)
    models = [m for m in _find(client, "models", name) if m["_source"].get("connector_id") == connector_id]
    if models:
        model_id = models[0]["_id"]
    else:
        body = {"name": name, "function_name": "remote", "connector_id": connector_id,
                "description": "D2S sparse encoder served by lsr serve (see its connector)"}
        task = _request(client, "POST", f"{ML}/models/_register", body)
        model_id = task.get("model_id") or _wait_task(client, task["task_id"])["model_id"]
        log.info("registered remote model %s", model_id)
    deploy(client, model_id)
    return RemoteModel(model_id, connector_id, endpoint, name)


def predict(client, model_id: str, texts: list[str]) -> Any:
    """What the model returns for `texts` through ML Commons (to check the connector end to end)."""
    return _request(client, "POST", f"{ML}/models/{model_id}/_predict", {"parameters": {"input": texts}})


INGEST_PIPELINE = "lsr-sparse-encoding"


def install_ingest_pipeline(client, model_id: str, name: str = INGEST_PIPELINE, source_field: str = "caption",
                            field: str = "sparse") -> str:
    """PUT ``pipelines/sparse_encoding.json`` with the model id (and field names) filled in; returns its name."""
    from lsr.backends.opensearch.client import load_definition

    body = load_definition("pipelines", "sparse_encoding.json")
    processor = body["processors"][0]["sparse_encoding"]
    processor["model_id"] = model_id
    processor["field_map"] = {source_field: field}
    _request(client, "PUT", f"/_ingest/pipeline/{name}", body)
    return name
