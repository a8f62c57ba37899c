"""Our query encoder inside OpenSearch: an exported D2S module as a LOCAL ML Commons SPARSE_ENCODING model.

`lsr.encoders.export` writes ``model.zip`` (one ``model.pt`` or ``model.onnx`` + ``tokenizer.json``) and
``export.json``. `register_local_model` uploads the zip the way ML Commons takes a local model without a
URL: ``_register_meta`` (SHA-256, size, chunk count), 10 MB ``upload_chunk/N`` sent as ``application/json``
(``application/octet-stream`` gets 406), then ``_deploy``. The node then runs the whole words query itself:
``neural_sparse`` with ``query_text`` and the model id, and the ``sparse_encoding`` ingest processor, with
no `lsr serve`. The model's name carries the zip's hash, so registering the same export again reuses it.

The node needs DJL's PyTorch natives before its first local deploy (`lsr.node.djl`); a deploy that fails
for want of them says how to fix it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsr.backends.opensearch.ml import ML, _request, deploy
from lsr.backends.opensearch.tokenize_model import upload_model
from lsr.errors import MissingFileError, ServiceError

log = logging.getLogger(__name__)

ENGINE_FORMATS = {"torchscript": "TORCH_SCRIPT", "onnx": "ONNX"}
DJL_HINTS = ("publish.djl.ai", "UnknownHostException", "libdjl_torch", "Failed to load PyTorch native library",
             "No deep learning engine found", "ExceptionInInitializerError", "NoClassDefFoundError")


class LocalModelError(ServiceError):
    """ML Commons could not register or deploy the exported model; the message says what to do."""


@dataclass
class LocalModel:
    model_id: str
    name: str
    model_format: str
    model_hash: str
    zip_sha256: str
    reused: bool


def _export_files(directory: Path) -> tuple[dict, bytes]:
    import json

    config_path, zip_path = directory / "export.json", directory / "model.zip"
    if not config_path.is_file() or not zip_path.is_file():
        raise MissingFileError(f"{directory} has no export.json + model.zip; make them with "
                               "`lsr opensearch export --model MODEL_DIR --out DIR`.")
    return json.loads(config_path.read_text()), zip_path.read_bytes()


def register_local_model(client, export_dir: str | Path, name: str = "lsr-d2s-local",
                         timeout: float = 300.0) -> LocalModel:
    """Upload (unless a model with the same zip exists) and deploy the export; returns the model."""
    import hashlib

    config, data = _export_files(Path(export_dir))
    model_format = ENGINE_FORMATS[config["format"]]
    expand = config.get("expand", True)
    model_id, reused = upload_model(client, data, f"{name}-{'' if expand else 'noexp-'}".rstrip("-"), {
        "model_format": model_format, "function_name": "SPARSE_ENCODING",
        "description": f"lsr D2S query encoder (model {config.get('model_hash')}, top {config.get('max_terms')} "
                       f"terms, {'expanded' if expand else 'no expansion'})"})
    try:
        deploy(client, model_id, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - the task error is a string from the node
        text = str(exc)
        if any(hint in text for hint in DJL_HINTS):
            raise LocalModelError(
                f"OpenSearch could not load PyTorch to run model {model_id}: {text[:400]} -- DJL's native libraries "
                "are missing or failed to load. Install them (`python -c 'from lsr.node.djl import install_natives; "
                "install_natives()'`, done by `lsr opensearch register --local` for the node `lsr opensearch start` "
                "runs) and RESTART the node (DJL does not retry in a running node): lsr opensearch stop && "
                "lsr opensearch start.") from exc
        raise LocalModelError(f"ML Commons could not deploy model {model_id}: {text[:600]}") from exc
    digest = hashlib.sha256(data).hexdigest()
    full_name = f"{name}-{'' if expand else 'noexp-'}{digest[:12]}"
    return LocalModel(model_id, full_name, model_format, config.get("model_hash", ""), digest, reused)


def predict_sparse(client, model_id: str, texts: list[str]) -> list[dict[str, float]]:
    """The node's {token: weight} for each text (``_predict`` of a SPARSE_ENCODING model)."""
    response = _request(client, "POST", f"{ML}/_predict/sparse_encoding/{model_id}", {"text_docs": list(texts)})
    return [result["output"][0]["dataAsMap"]["response"][0] for result in response["inference_results"]]


def model_info(client, model_id: str) -> dict[str, Any]:
    return _request(client, "GET", f"{ML}/models/{model_id}")
