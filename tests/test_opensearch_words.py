"""OpenSearch takes words, end to end on the REAL node: `lsr serve` as a subprocess, `lsr opensearch
register`, then plain HTTP requests (urllib, no lsr code in the query path) with `query_text`; the same
ranking as the Python `query_tokens` path within the 9-bit bound; ingest through `sparse_encoding`;
serve down -> a clear error naming the model and endpoint; serve back -> works without re-registering."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import needs_minilm

pytestmark = [pytest.mark.opensearch, needs_minilm]
pytest.importorskip("uvicorn")

CAPTIONS = ["a dog catches a frisbee in a park", "two men play guitars on a stage", "a little girl in a pink dress",
            "people ride bikes down a busy city street", "a cat sleeps on a red sofa", "a boat sails on a calm lake",
            "a man surfs a large wave", "children play football on the grass"]
QUERIES = ["a dog with a frisbee", "men playing guitar", "girl wearing pink", "a sleeping cat", "surfing"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None, method: str = "POST"):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())


def start_serve(model_dir, port: int) -> subprocess.Popen:
    log = Path(model_dir).parent / f"serve-{port}.log"
    with log.open("a") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lsr.cli", "serve", "--model", str(model_dir), "--port",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            http_json(f"http://127.0.0.1:{port}/healthz", method="GET")
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"lsr serve exited: {log.read_text()}")
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("lsr serve did not answer /healthz within 120 s")


def register(model_dir, port: int, opensearch_url: str, name: str, capsys) -> str:
    """`lsr opensearch register` as a user runs it; returns the model id it prints."""
    from lsr.cli.main import main

    argv = ["opensearch", "register", "--model", str(model_dir), "--serve-url", f"http://127.0.0.1:{port}",
            "--index", name, "--url", opensearch_url, "--name", f"lsr-test-{port}"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"curl -s -H 'Content-Type: application/json' {opensearch_url}/{name}/_search" in out
    return out.split("model_id: ")[1].split()[0]


def assert_within_bound(hits: list[dict], exact: dict[str, float], k: int) -> None:
    """Raw-HTTP hits against the Python path's exact scores: each score within the 9-bit bound, and
    every item clearly in the exact top-k present."""
    from lsr.backends.opensearch import RELATIVE_SCORE_BOUND

    assert hits and len(hits) == min(k, len(exact))
    for h in hits:
        assert exact[h["_id"]] * (1 - RELATIVE_SCORE_BOUND) - 1e-5 <= h["_score"] <= exact[h["_id"]] + 1e-5
    kth = sorted(exact.values(), reverse=True)[len(hits) - 1]
    assert {i for i, v in exact.items() if v > kth / (1 - RELATIVE_SCORE_BOUND)} <= {h["_id"] for h in hits}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, vocab):
    from lsr import D2SConfig, D2SEncoder, D2SModel

    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=384, hidden_dim=16, dense_encoder={"name": "minilm", "path": None}))
    weights = D2SEncoder(model).encode_document(CAPTIONS).csr.data
    model.config.min_weight = float(np.quantile(weights, 1 - 60 / 15000))  # about 60 tokens a vector
    path = tmp_path_factory.mktemp("words") / "model"
    model.save_pretrained(path)
    return path


def test_words_in_hits_out_through_the_node(model_dir, opensearch_url, vocab, capsys):
    from lsr import D2SEncoder, OpenSearchIndex, SparseSearcher
    from lsr.backends.opensearch.text_query import RemoteModelError

    port = free_port()
    serve = start_serve(model_dir, port)
    name = f"lsr-words-{uuid.uuid4().hex[:8]}"
    index = OpenSearchIndex(opensearch_url, index=name, vocab=vocab)
    try:
        encoder = D2SEncoder.from_pretrained(model_dir)
        index.index([f"c{i}" for i in range(len(CAPTIONS))], encoder.encode_document(CAPTIONS),
                    [{"caption": c} for c in CAPTIONS])
        index.record_provenance(encoder.provenance())
        index.commit()
        model_id = register(model_dir, port, opensearch_url, name, capsys)
        assert register(model_dir, port, opensearch_url, name, capsys) == model_id  # idempotent

        python_path = SparseSearcher(index, encoder)
        for text in QUERIES:  # a plain HTTP client: words in, hits out
            body = {"size": 5, "query": {"neural_sparse": {"sparse": {"query_text": text, "model_id": model_id}}}}
            hits = http_json(f"{opensearch_url}/{name}/_search", body)["hits"]["hits"]
            assert_within_bound(hits, {h.id: h.score for h in python_path.search(text, k=len(CAPTIONS))}, 5)
        assert index.search_text(QUERIES[0], k=1, mode="two_phase")[0].id == python_path.search(QUERIES[0], k=1)[0].id

        new = {"id": "new1", "caption": "a purple elephant dances on a wooden table"}  # ingest: words in
        http_json(f"{opensearch_url}/{name}/_doc/new1?pipeline=lsr-sparse-encoding&refresh=true", new, "PUT")
        assert index.search_text("a purple elephant dancing", k=1)[0].id == "new1"

        serve.terminate()
        serve.wait(30)
        with pytest.raises(RemoteModelError, match=f"{model_id}.*127.0.0.1:{port}.*lsr serve"):
            index.search_text(QUERIES[0], k=3)
        with pytest.raises(urllib.error.HTTPError):
            http_json(f"{opensearch_url}/{name}/_search",
                      {"query": {"neural_sparse": {"sparse": {"query_text": "a dog", "model_id": model_id}}}})
        serve = start_serve(model_dir, port)  # back on the same port: no re-registration needed
        assert index.search_text(QUERIES[1], k=1)[0].id == python_path.search(QUERIES[1], k=1)[0].id
    finally:
        serve.terminate()
        serve.wait(30)
        index.drop()


def test_query_text_ranks_the_caption_proxy_like_the_python_path(model_dir, opensearch_url, vocab, capsys):
    """Flickr30k test (caption proxy): 1,000 caption-0 documents, 30 test captions as raw-HTTP queries."""
    from lsr import D2SEncoder, OpenSearchIndex, SparseSearcher
    from lsr.data.caption_proxy import data_root
    from lsr.data.sources import load_split_spec

    try:
        data_root()
    except FileNotFoundError:
        pytest.skip("caption data (../shared/data or LSR_DATA) not present")
    split = load_split_spec("proxy:f30k/test", vocab)
    port = free_port()
    serve = start_serve(model_dir, port)
    name = f"lsr-words-{uuid.uuid4().hex[:8]}"
    index = OpenSearchIndex(opensearch_url, index=name, vocab=vocab)
    try:
        encoder = D2SEncoder.from_pretrained(model_dir)
        index.index(split.doc_ids, encoder.encode_dense(split.doc_emb), [{"caption": c} for c in split.doc_texts])
        index.commit()
        model_id = register(model_dir, port, opensearch_url, name, capsys)
        python_path = SparseSearcher(index, encoder)
        embedded_scores = encoder.encode_query(split.query_texts[:150:5]).dot(encoder.encode_dense(split.doc_emb))
        for qi, text in enumerate(split.query_texts[:150:5]):
            body = {"size": 10, "query": {"neural_sparse": {"sparse": {"query_text": text, "model_id": model_id}}}}
            hits = http_json(f"{opensearch_url}/{name}/_search", body)["hits"]["hits"]
            exact = {split.doc_ids[j]: float(s) for j, s in enumerate(embedded_scores[qi]) if s > 0}
            assert_within_bound(hits, exact, 10)
            top = python_path.search(text, k=1)[0]  # the Python query_tokens path agrees with the exact scores
            assert exact[top.id] == pytest.approx(max(exact.values()), rel=2 ** -8)
    finally:
        serve.terminate()
        serve.wait(30)
        index.drop()
