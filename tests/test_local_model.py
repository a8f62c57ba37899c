"""The D2S query encoder as a LOCAL ML Commons model (`lsr.encoders.export`, `lsr opensearch register --local`).

Unit tests: the exported TorchScript / ONNX module returns `encode_query`'s weights (unmatchable tokens
dropped, capped at max_terms) on a battery of texts. Node tests (marker ``opensearch``) run on a node of
their OWN, started through `lsr opensearch start` with its own home and port: DJL's PyTorch natives must be
in place before a node's first local deploy (a failed attempt sticks until a restart), the tests restart
the node, and they put a faiss field on it; none of which the shared test node should go through.
Its home (LSR_LOCAL_MODEL_NODE_HOME, default /var/lib/lsr-opensearch-local-model as root, else
~/.cache/lsr/opensearch-local-model) keeps the install; its data folder, natives included, is wiped first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import needs_minilm

BATTERY = ["a dog catching a frisbee", "Café crème brûlée à Paris, naïve façade", "東京の猫と犬 and a cat",
           "[CLS] [SEP] [MASK] [PAD] [UNK] special tokens", "long " * 200 + "the end",
           "two men. 50% off! e.g. U.S.A.", "MiXeD CaSe   extra   spaces\tand\ttabs", "x"]
MAX_TERMS = 48


def _tiny_model(path: Path, seed: int = 0) -> Path:
    from lsr.d2s.model import D2SConfig, D2SModel

    torch.manual_seed(seed)
    model = D2SModel(D2SConfig(dense_dim=384, hidden_dim=16, dense_encoder={"name": "minilm", "path": None},
                               min_weight=0.5))
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from lsr.encoders.sparse import D2SEncoder

    path = _tiny_model(tmp_path_factory.mktemp("local_model") / "model")
    return path, D2SEncoder.from_pretrained(path)


def _check_export(tiny, tmp_path, fmt: str, expand: bool) -> None:
    from lsr.encoders.export import ExportConfig, export_query_model, python_reference, run_exported

    path, encoder = tiny
    out = tmp_path / fmt
    config = export_query_model(encoder, out, fmt, MAX_TERMS, expand=expand, source=path)
    assert ExportConfig.load(out) == config and config.model_hash == encoder.provenance()["model_hash"]
    import zipfile

    with zipfile.ZipFile(out / "model.zip") as archive:
        assert sorted(archive.namelist()) == sorted([f"model.{'pt' if fmt == 'torchscript' else 'onnx'}",
                                                     "tokenizer.json"])
    want = python_reference(encoder, BATTERY, MAX_TERMS, expand=expand)
    got = run_exported(out, BATTERY)
    assert got.shape == (len(BATTERY), 30522)
    assert ((want > 0) == (got > 0)).all(), "the exported module keeps other tokens than encode_query"
    assert np.abs(want - got).max() < 1e-5
    nnz = (got > 0).sum(1)
    assert nnz.max() <= MAX_TERMS and (nnz > 0).all() or not expand
    if not expand:  # each row keeps only its own tokens
        for text, row in zip(BATTERY, got):
            own = set(encoder.vocab.token_ids([text])[0].tolist())
            assert set(np.flatnonzero(row).tolist()) <= own


@needs_minilm
def test_torchscript_export_matches_encode_query(tiny, tmp_path):
    _check_export(tiny, tmp_path, "torchscript", expand=True)


@needs_minilm
def test_torchscript_no_expansion_export_keeps_own_tokens(tiny, tmp_path):
    _check_export(tiny, tmp_path, "torchscript", expand=False)


@needs_minilm
def test_onnx_export_matches_encode_query(tiny, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    _check_export(tiny, tmp_path, "onnx", expand=True)


@needs_minilm
def test_exported_tokenizer_names_ids_as_our_indexes_do(tiny, tmp_path):
    """The node names a weight by decoding its id alone with the zip's tokenizer.json (special tokens not
    skipped): that name must be the index's feature name (`FeatureNaming`, '.' as %2E, '%' as %25)."""
    from tokenizers import Tokenizer

    from lsr.backends.opensearch.features import FeatureNaming
    from lsr.encoders.export import _write_tokenizer

    _, encoder = tiny
    _write_tokenizer(encoder, tmp_path / "tokenizer.json")
    tokenizer = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    naming = FeatureNaming("wordpiece", encoder.vocab)
    names = [tokenizer.decode([i], skip_special_tokens=True) for i in range(encoder.vocab_size)]
    assert names == [naming.name(i) for i in range(encoder.vocab_size)]
    assert tokenizer.encode("a man . 50% off").tokens == ["[CLS]", "a", "man", ".", "50", "%", "off", "[SEP]"]


def test_export_refuses_a_model_without_minilm(tmp_path):
    from lsr.d2s.model import D2SConfig, D2SModel
    from lsr.encoders.export import build_module
    from lsr.encoders.sparse import D2SEncoder
    from lsr.errors import InvalidInputError

    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=4, vocab_size=50))
    with pytest.raises(InvalidInputError, match="Only D2S models over MiniLM"):
        build_module(D2SEncoder(model))


def test_djl_natives_layout(tmp_path):
    """The natives folder and names DJL 0.31.1 (ML Commons 3.6) looks for, extracted from the two jars."""
    import zipfile

    from lsr.node import djl
    from lsr.node.install import NodeConfig

    cfg = NodeConfig(home=tmp_path / "home", user=None, downloads=tmp_path / "dl")
    cfg.downloads.mkdir()
    with zipfile.ZipFile(cfg.downloads / djl.NATIVE_JAR, "w") as jar:
        for name in ("libtorch.so", "libtorch_cpu.so", "libc10.so"):
            jar.writestr(f"pytorch/cpu/linux-x86_64/{name}", b"x")
        jar.writestr("native/lib/pytorch.properties", "flavor=cpu")
    with zipfile.ZipFile(cfg.downloads / djl.JNI_JAR, "w") as jar:
        jar.writestr("jnilib/linux-x86_64/cpu/libdjl_torch.so", b"cxx11")
        jar.writestr("jnilib/linux-x86_64/cpu-precxx11/libdjl_torch.so", b"precxx11")
    assert djl.downloaded(cfg) and not djl.installed(cfg)
    target = djl.install_natives(cfg)
    assert target == cfg.home / "data/ml_cache/pytorch/2.5.1-cpu-precxx11-linux-x86_64"
    assert sorted(p.name for p in target.iterdir()) == ["0.31.1-libdjl_torch.so", "libc10.so", "libtorch.so",
                                                        "libtorch_cpu.so"]
    assert (target / "0.31.1-libdjl_torch.so").read_bytes() == b"cxx11"  # the ABI of pytorch-native-cpu
    assert djl.installed(cfg)


def test_node_library_path_has_the_knn_natives(tmp_path):
    from lsr.node.install import NodeConfig
    from lsr.node.run import library_path

    cfg = NodeConfig(home=tmp_path, user=None)
    assert library_path(cfg).split(os.pathsep)[0] == str(cfg.install_dir / "plugins/opensearch-knn/lib")


# --------------------------------------------------------------------------- on a node of their own


def _node_env() -> dict:
    home = os.environ.get("LSR_LOCAL_MODEL_NODE_HOME") or (
        "/var/lib/lsr-opensearch-local-model" if os.geteuid() == 0 else
        str(Path.home() / ".cache/lsr/opensearch-local-model"))
    return {**os.environ, "LSR_OPENSEARCH_HOME": home,
            "LSR_OPENSEARCH_PORT": os.environ.get("LSR_LOCAL_MODEL_NODE_PORT", "9270"),
            "LSR_OPENSEARCH_HEAP": os.environ.get("LSR_LOCAL_MODEL_NODE_HEAP", "1g"), "OPENSEARCH_URL": ""}


def _lsr(env: dict, *args: str, timeout: float = 900) -> str:
    proc = subprocess.run([sys.executable, "-m", "lsr.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"lsr {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _http(url: str, body: dict | None = None, method: str | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as reply:
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def own_node():
    """A fresh data folder (no natives, no models) under a kept install, started by `lsr opensearch start`."""
    from lsr.node import run as node

    env = _node_env()
    cfg = node.NodeConfig.from_env(home=env["LSR_OPENSEARCH_HOME"], port=int(env["LSR_OPENSEARCH_PORT"]))
    node.stop(cfg)
    shutil.rmtree(cfg.home / "data", ignore_errors=True)
    _lsr(env, "opensearch", "start", "--timeout", "400")
    yield env, cfg
    node.stop(cfg)


CAPTIONS = ["a dog catches a frisbee in a park", "two men play guitars on a stage", "a child in a pink dress",
            "a black dog runs on the beach", "people walk down a busy city street", "a man rides a bike",
            "a cat sleeps on a sofa", "children play football on the grass"]
QUERIES = ["a dog catching a frisbee", "musicians on stage", "a girl in pink", "a cat on a couch"]


def _words_search(url: str, index: str, model_id: str, text: str, k: int = 5) -> list[str]:
    """What a `curl` with plain words gets: neural_sparse + query_text + model_id."""
    body = {"size": k, "_source": ["caption"],
            "query": {"neural_sparse": {"sparse": {"query_text": text, "model_id": model_id}}}}
    return [h["_id"] for h in _http(f"{url}/{index}/_search", body)["hits"]["hits"]]


@needs_minilm
@pytest.mark.opensearch
@pytest.mark.slow
def test_words_query_runs_inside_the_node_and_survives_a_restart(own_node, tmp_path):
    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.encoders.sparse import D2SEncoder
    from lsr.node import djl
    from lsr.search import SparseSearcher

    env, cfg = own_node
    url = cfg.url
    model_dir = _tiny_model(tmp_path / "model", seed=1)
    encoder = D2SEncoder.from_pretrained(model_dir)
    index = OpenSearchIndex(url, index="local-model-words", vocab=encoder.vocab)
    index.create(overwrite=True)
    ids = [f"img{i}" for i in range(len(CAPTIONS))]
    index.index(ids, encoder.encode_document(CAPTIONS), [{"caption": c} for c in CAPTIONS])
    index.commit()
    _lsr(env, "opensearch", "export", "--model", str(model_dir), "--out", str(tmp_path / "export"))
    out = _lsr(env, "opensearch", "register", "--local", "--model", str(tmp_path / "export"),
               "--index", "local-model-words", "--url", url)
    assert djl.installed(cfg), "register --local installs the natives into our node"
    model_id = out.split("model_id: ")[1].split()[0]
    assert index.remote_model()["model_id"] == model_id and index.remote_model()["function_name"] == "SPARSE_ENCODING"
    python = SparseSearcher(index, encoder)
    want = {q: [h.id for h in python.search(q, k=5, explain=False)] for q in QUERIES}
    got = {q: _words_search(url, "local-model-words", model_id, q) for q in QUERIES}
    assert got == want
    # lsr search --server-side uses the model the index records
    printed = _lsr(env, "search", "--index", "opensearch://" + url.split("//")[1] + "/local-model-words",
                   "--server-side", "-k", "3", QUERIES[0])
    assert want[QUERIES[0]][0] in printed
    # the same export again reuses the model
    again = _lsr(env, "opensearch", "register", "--local", "--model", str(tmp_path / "export"), "--url", url)
    assert f"model_id: {model_id}" in again and "reused" in again
    # the ingest pipeline: raw captions encoded by the node itself
    pipeline = index.remote_model()["ingest_pipeline"]
    _http(f"{url}/local-model-words/_doc/piped?pipeline={pipeline}&refresh=true", {"caption": CAPTIONS[0]}, "PUT")
    stored = _http(f"{url}/local-model-words/_doc/piped")["_source"]["sparse"]
    assert 0 < len(stored) <= 1024
    _http(f"{url}/local-model-words/_doc/piped?refresh=true", method="DELETE")

    from lsr.backends.opensearch.ml import loaded
    from lsr.node import run as node

    node.stop(cfg)
    _lsr(env, "opensearch", "start", "--timeout", "400")
    deadline = time.monotonic() + 300
    while not loaded(index.client, model_id):  # ML Commons redeploys it by itself
        assert time.monotonic() < deadline, "the local model did not come back after the restart"
        time.sleep(2)
    assert {q: _words_search(url, "local-model-words", model_id, q) for q in QUERIES} == want
    index.drop()


@pytest.mark.opensearch
@pytest.mark.slow
def test_faiss_field_takes_documents(own_node):
    """A knn_vector field on the faiss engine: the node finds the k-NN plugin's JNI library (LD_LIBRARY_PATH).
    Skipped where the plugin has no native libraries (its Maven Central zip ships none): there the first
    faiss document stops the node whatever the library path, so the test would only kill it."""
    from lsr.node.run import knn_native_engines

    _, cfg = own_node
    if not any("faiss" in name for name in knn_native_engines(cfg)):
        pytest.skip(f"no faiss JNI library in {cfg.install_dir}/plugins/opensearch-knn/lib (the plugin zip from "
                    "Maven Central has none); knn_vector fields on this node must use the lucene engine")
    url, name = cfg.url, "local-model-faiss"
    try:
        _http(f"{url}/{name}", method="DELETE")
    except urllib.error.HTTPError:
        pass
    _http(f"{url}/{name}", {"settings": {"index.knn": True}, "mappings": {"properties": {"v": {
        "type": "knn_vector", "dimension": 4,
        "method": {"name": "hnsw", "engine": "faiss", "space_type": "l2"}}}}}, "PUT")
    for i in range(5):
        _http(f"{url}/{name}/_doc/{i}?refresh=true", {"v": [float(i), 1.0, 0.0, 0.5]}, "PUT")
    hits = _http(f"{url}/{name}/_search", {"size": 2, "query": {"knn": {"v": {"vector": [3.0, 1.0, 0.0, 0.5], "k": 2}}}})
    assert hits["hits"]["hits"][0]["_id"] == "3"
    assert _http(f"{url}/_cluster/health")["status"] in ("green", "yellow")
