"""Inference-free queries inside OpenSearch: the query table as an ML Commons SPARSE_TOKENIZE model.

The model is a zip of ``tokenizer.json`` and ``idf.json`` ({token: weight}; a token missing from it weighs
1.0, so the export lists every token). It is uploaded without a model server: ``_register_meta`` (its
SHA-256, size and chunk count), ``upload_chunk/N`` (the zip bytes, sent as ``application/json``: the node
refuses ``application/octet-stream`` with 406), then ``_deploy``. A ``neural_sparse`` query with
``query_text`` and that ``model_id`` is then tokenized and weighted on the node, with no code of ours in
the query path. The model's name carries the zip's hash, so registering the same table again reuses it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from typing import Mapping

from lsr.backends.opensearch.ml import ML, _find, _request, deploy
from lsr.errors import InvalidInputError

log = logging.getLogger(__name__)

CHUNK_BYTES = 10_000_000
COMPLETE = ("REGISTERED", "DEPLOYED", "DEPLOYING", "PARTIALLY_DEPLOYED", "UNDEPLOYED")


def model_zip(files: Mapping[str, str]) -> bytes:
    """The zip of a SPARSE_TOKENIZE model (deterministic: fixed timestamps, sorted names)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    return buffer.getvalue()


def register_tokenize_model(client, files: Mapping[str, str], name: str = "lsr-inference-free") -> str:
    """Upload and deploy the files as a SPARSE_TOKENIZE model (reusing one with the same content); its id."""
    if set(files) != {"tokenizer.json", "idf.json"}:
        raise InvalidInputError(f"A SPARSE_TOKENIZE model needs tokenizer.json and idf.json, got {sorted(files)}.")
    data = model_zip(files)
    model_id, _ = upload_model(client, data, name, {
        "model_format": "TORCH_SCRIPT", "function_name": "SPARSE_TOKENIZE",
        "description": "lsr inference-free queries: WordPiece tokens weighted by a learned table"})
    deploy(client, model_id)
    return model_id


def upload_model(client, data: bytes, name: str, meta: Mapping[str, str]) -> tuple[str, bool]:
    """(model id, reused): the zip `data` registered under `name` + its hash, uploaded in chunks unless a
    complete model of that name exists (an interrupted upload or failed deploy of it is deleted first).
    `meta` adds ``model_format``, ``function_name`` and ``description`` to the registration."""
    digest = hashlib.sha256(data).hexdigest()
    full_name = f"{name}-{digest[:12]}"
    same = [m for m in _find(client, "models", full_name) if "chunk_number" not in m["_source"]]
    found = [m for m in same if m["_source"].get("model_state") in COMPLETE]
    for broken in (m for m in same if m not in found):  # never reused, removed
        log.warning("deleting model %s (%s): its upload or deploy did not complete", broken["_id"],
                    broken["_source"].get("model_state"))
        _request(client, "DELETE", f"{ML}/models/{broken['_id']}")
    if found:
        return found[0]["_id"], True
    chunks = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
    registration = {"name": full_name, "version": "1.0.0", "model_content_size_in_bytes": len(data),
                    "model_content_hash_value": digest, "total_chunks": len(chunks), **meta}
    model_id = _request(client, "POST", f"{ML}/models/_register_meta", registration)["model_id"]
    for number, chunk in enumerate(chunks):
        # raw bytes under the client's own application/json content type (octet-stream gets 406)
        client.transport.perform_request("POST", f"{ML}/models/{model_id}/upload_chunk/{number}", body=chunk)
    log.info("registered %s model %s (%d bytes, %d chunks)", meta.get("function_name"), model_id, len(data),
             len(chunks))
    return model_id, False


def tokenize(client, model_id: str, texts: list[str]) -> list[dict[str, float]]:
    """The node's {token: weight} for each text (``_predict/sparse_tokenize``), to check it against ours."""
    response = _request(client, "POST", f"{ML}/_predict/sparse_tokenize/{model_id}", {"text_docs": list(texts)})
    return [result["output"][0]["dataAsMap"]["response"][0] for result in response["inference_results"]]
