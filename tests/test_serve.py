"""`lsr serve`'s app: sparse maps per text, expansion and naming switches, clear 4xx errors, and
micro-batching that hands each concurrent request its own answer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from lsr.encoders.sparse import D2SEncoder  # noqa: E402
from lsr.serve import ServeConfig, create_app  # noqa: E402
from tests.test_sparse_encoder import HashTextEncoder, tiny_model  # noqa: E402

TEXTS = ["a dog runs on the grass", "two men play guitars", "a red car on a street"]


@pytest.fixture()
def encoder(vocab) -> D2SEncoder:
    return D2SEncoder(tiny_model(), HashTextEncoder(), vocab=vocab, min_weight=0.3)


@pytest.fixture()
def client(encoder):
    with TestClient(create_app(encoder, ServeConfig(max_texts=4, max_chars=100, max_body_bytes=4000))) as c:
        yield c


def test_sparse_maps_match_the_encoder(client, encoder, vocab):
    reply = client.post("/v1/sparse", json={"texts": TEXTS})
    assert reply.status_code == 200
    maps = reply.json()
    expected = encoder.encode_query(TEXTS)
    assert len(maps) == 3
    for got, vector in zip(maps, expected):
        want = {vocab.token(int(t)).replace("%", "%25").replace(".", "%2E"): float(w)
                for t, w in zip(vector.ids, vector.weights)}
        assert got.keys() == want.keys() and np.allclose([got[k] for k in want], list(want.values()))
    own = client.post("/v1/sparse?expand=false", json={"texts": TEXTS[:1]}).json()[0]
    assert set(own) <= set(vocab.tokenizer.tokenize(TEXTS[0])) and len(own) < len(maps[0])
    ids = client.post("/v1/sparse?naming=id", json={"texts": TEXTS[:1]}).json()[0]
    assert sorted(int(k) for k in ids) == expected[0].ids.tolist()
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model_hash"] == encoder.provenance()["model_hash"]


def test_replies_are_pure_ascii_json(client, vocab):
    """Non-ASCII tokens travel as \\u escapes: ML Commons mangled raw UTF-8 tokens split across read chunks."""
    from lsr.serve.app import ascii_json_response

    body = ascii_json_response()([{"##\u6797": 1.5, "caf\u00e9": 0.25}]).body
    assert body == b'[{"##\\u6797":1.5,"caf\\u00e9":0.25}]'
    reply = client.post("/v1/sparse?expand=false", json={"texts": ["a \u6797 garden"]})
    assert reply.status_code == 200 and reply.content.isascii()
    assert "\u6797" in vocab.tokenizer.tokenize("a \u6797 garden") and "\u6797" in reply.json()[0]


@pytest.mark.parametrize("body, status, message", [
    (b"not json", 400, "not JSON"),
    (b'{"text": ["a"]}', 422, "texts"),
    (b'{"texts": []}', 422, "non-empty list"),
    (b'{"texts": ["a", ""]}', 422, "texts[1]"),
    (b'{"texts": ["a", 3]}', 422, "texts[1]"),
    (b'{"texts": ["a", "b", "c", "d", "e"]}', 413, "limit is 4"),
    (b'{"texts": ["' + b"x" * 101 + b'"]}', 413, "101 characters"),
    (b'{"texts": ["' + b"x " * 2500 + b'"]}', 413, "bytes"),
])
def test_bad_requests_are_clear_4xx(client, body, status, message):
    reply = client.post("/v1/sparse", content=body)
    assert reply.status_code == status and message in reply.json()["error"]
    assert client.post("/v1/sparse?expand=maybe", json={"texts": ["a"]}).status_code == 422


def test_concurrent_requests_are_batched_and_answered_each(encoder):
    import httpx

    calls = []
    original = encoder.encode_query

    def counting(texts, expand=True, **kw):
        calls.append(len(texts))
        return original(texts, expand, **kw)

    encoder.encode_query = counting
    app = create_app(encoder, ServeConfig(max_wait_ms=50))

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as c:
            replies = await asyncio.gather(*[c.post("/v1/sparse", json={"texts": [t]}) for t in TEXTS * 3])
        return [r.json()[0] for r in replies]

    maps = asyncio.run(run())
    single = [original([t])[0] for t in TEXTS * 3]
    assert [len(m) for m in maps] == [v.nnz for v in single]
    assert sum(calls) == 9 and len(calls) < 9  # fewer encoder calls than requests
