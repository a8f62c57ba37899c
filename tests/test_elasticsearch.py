"""The Elasticsearch backend beyond the shared contract (tests/test_backend_contract.py runs that): the
node manager's port checks in both directions, dotted tokens, exact vs pruned search, the address form,
dense re-ranking and hybrid search against the embedded index, and a secured node (TLS + users)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from dataclasses import replace

import numpy as np
import pytest

from lsr.backends.embedded import EmbeddedIndex
from lsr.sparse import SparseVector

pytestmark = pytest.mark.elasticsearch


def vec(pairs: dict[int, float]) -> SparseVector:
    return SparseVector(np.array(list(pairs), dtype=np.int32), np.array(list(pairs.values()), dtype=np.float32))


@pytest.fixture()
def es_index(elasticsearch_url, vocab):
    from lsr.backends.elasticsearch import ElasticsearchIndex

    made = []

    def make(**kwargs):
        index = ElasticsearchIndex(elasticsearch_url, index=f"lsr-test-{uuid.uuid4().hex[:8]}", vocab=vocab, **kwargs)
        made.append(index)
        return index

    yield make
    for index in made:
        index.drop()


@pytest.mark.opensearch
def test_each_manager_refuses_the_other_engine_on_its_port_in_one_line(elasticsearch_url, opensearch_url):
    """An Elasticsearch node on the OpenSearch port (and the reverse): one clear message, nothing started."""
    es_port, os_port = elasticsearch_url.rsplit(":", 1)[1], opensearch_url.rsplit(":", 1)[1]
    for engine, port, other in (("opensearch", es_port, "Elasticsearch"), ("elasticsearch", os_port, "OpenSearch")):
        out = subprocess.run([sys.executable, "-m", "lsr.cli", engine, "start", "--port", port],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"answers as {other}" in lines[0] and "another port" in lines[0], out.stderr


@pytest.mark.opensearch
def test_the_fixtures_check_names_the_foreign_server(elasticsearch_url, opensearch_url):
    from lsr.node.identify import ForeignServerError, check_engine, identify

    assert identify(elasticsearch_url).engine == "elasticsearch" and identify(opensearch_url).engine == "opensearch"
    with pytest.raises(ForeignServerError, match="answers as Elasticsearch"):
        check_engine(elasticsearch_url, "opensearch", "set OPENSEARCH_URL")
    with pytest.raises(ForeignServerError, match="answers as OpenSearch"):
        check_engine(opensearch_url, "elasticsearch", "set ELASTICSEARCH_URL")
    from lsr.backends.elasticsearch import ElasticsearchIndex
    from lsr.errors import BackendUnavailableError

    with pytest.raises(BackendUnavailableError, match="does not answer as Elasticsearch"):
        ElasticsearchIndex(opensearch_url, index="x").exists()  # the client's own product check


def test_dotted_tokens_round_trip_and_explanations_name_the_real_token(es_index, vocab):
    index = es_index()
    dot, dots = vocab.tokens.index("."), vocab.tokens.index("...")
    index.index(["a", "b"], [vec({dot: 1.5, 1000: 0.5}), vec({dots: 2.0})])
    assert index.get("a").to_dict() == {dot: 1.5, 1000: 0.5}
    hits = index.search(vec({dot: 1.0, dots: 1.0}), k=5, explain=True)
    assert [h.id for h in hits] == ["b", "a"] and set(hits[1].contributions) == {dot}
    raw = index.client.get(index=index.index_name, id="a")["_source"]["sparse"]
    assert "%2E" in raw and "." not in raw  # escaped on the node, the real token in Python


def test_exact_search_matches_the_embedded_index_and_pruned_search_is_measured(es_index):
    from tests.test_backend_contract import assert_scores_close

    rng = np.random.default_rng(7)
    n = 400
    docs = [vec({int(t): float(w) for t, w in zip(rng.choice(300, 20, replace=False) + 1000, rng.gamma(2, .5, 20) + .01)})
            for _ in range(n)]
    ids = [f"d{i}" for i in range(n)]
    index, embedded = es_index(), EmbeddedIndex()
    index.index(ids, docs)
    embedded.index(ids, docs)
    queries = [vec({int(t): float(w) for t, w in zip(rng.choice(300, 12, replace=False) + 1000, rng.uniform(.1, 2, 12))})
               for _ in range(20)]
    exact = index.search_batch(queries, k=10)
    for q, got in zip(queries, exact):
        assert_scores_close(got, [(h.id, h.score) for h in embedded.search(q, k=20)], 10)
    pruned = index.search_batch(queries, k=10, mode="two_phase")
    recall = np.mean([len({h.id for h in p} & {h.id for h in e}) / 10 for p, e in zip(pruned, exact)])
    assert 0.0 < recall <= 1.0  # measured (benchmarks/bench_elasticsearch.py), not promised
    with pytest.raises(ValueError, match="Unknown search mode"):
        index.search(queries[0], mode="ann")


def test_the_address_form_opens_creates_and_reopens(elasticsearch_url, vocab):
    import lsr
    from lsr.errors import IndexNotFoundError

    address = f"elasticsearch://{elasticsearch_url.split('://')[1]}/lsr-test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(IndexNotFoundError, match="Elasticsearch index"):
        lsr.open_index(address)
    index = lsr.open_index(address, create=True, vocab=vocab)
    try:
        index.index(["a"], [vec({1000: 1.0})], [{"caption": "a dog"}])
        index.record_provenance({"model_hash": "abc"})
        index.commit()
        again = lsr.open_index(address, vocab=vocab)
        assert again.count() == 1 and again.metadata("a") == {"caption": "a dog"}
        assert again.provenance() == {"model_hash": "abc", "naming": "wordpiece"}
    finally:
        index.drop()


def test_dense_rerank_and_hybrid_match_the_embedded_index(es_index):
    rng = np.random.default_rng(3)
    n, dim = 120, 8
    docs = [vec({int(t): float(w) for t, w in zip(rng.choice(60, 8, replace=False) + 1000, rng.uniform(.1, 1, 8))})
            for _ in range(n)]
    dense = rng.normal(size=(n, dim)).astype(np.float32)
    ids = [f"d{i}" for i in range(n)]
    index, embedded = es_index(), EmbeddedIndex()
    index.index(ids, docs, dense=dense)
    embedded.index(ids, docs, dense=dense)
    assert index.dense_dim == dim
    q, dq = docs[0], rng.normal(size=dim).astype(np.float32)
    got, want = index.search_reranked(q, dq, k=10, candidates=50), embedded.search_reranked(q, dq, k=10, candidates=50)
    assert [h.id for h in got] == [h.id for h in want]
    assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5)
    for fusion in ("rrf", "min_max:0.5"):
        got = index.search_hybrid(q, dq, k=10, fusion=fusion, depth=120)
        want = embedded.search_hybrid(q, dq, k=10, fusion=fusion, depth=120)
        assert {h.id for h in got[:5]} == {h.id for h in want[:5]}, fusion


# ----------------------------------------------------------------------------------------- secured node


@pytest.fixture(scope="module")
def secured_node():
    """A second node (port 9270) with TLS on HTTP and the built-in `elastic` user, sharing the plain node's
    install; its password is made here and handed over through the keystore only."""
    from lsr.node import elasticsearch as es

    base = es.EsNodeConfig.from_env()
    es.install(base)
    cfg = replace(base, home=base.home.parent / f"{base.home.name}-secured-test", install_home=base.home,
                  port=9270, transport_port=9370, name="lsr-es-secured", cluster_name="lsr-es-secured", secure=True,
                  password=secrets.token_urlsafe(16), heap="512m")
    es.start(cfg, timeout=240)
    yield cfg
    es.stop(cfg)


def test_secured_node_right_credentials_work_wrong_ones_and_an_unknown_ca_fail_clearly(secured_node, vocab,
                                                                                       tmp_path, capsys):
    from lsr.backends.elasticsearch import ElasticsearchIndex
    from lsr.backends.opensearch.client import AccessDeniedError, CertificateVerifyError
    from lsr.backends.opensearch.connection import Connection

    cfg, password = secured_node, secured_node.password
    assert cfg.url.startswith("https://")
    good = Connection(cfg.url, user="elastic", password=password, ca_certs=str(cfg.ca_file))
    index = ElasticsearchIndex(good, index=f"lsr-secure-{uuid.uuid4().hex[:6]}", vocab=vocab)
    index.index(["a"], [vec({1000: 1.0})])
    assert [h.id for h in index.search(vec({1000: 1.0}))] == ["a"]
    index.drop()
    with pytest.raises(AccessDeniedError, match="refused the credentials") as wrong:
        ElasticsearchIndex(replace(good, password="not-it"), index="x").exists()
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(other_ca)], check=True, capture_output=True)
    with pytest.raises(CertificateVerifyError, match="TLS with Elasticsearch") as untrusted:
        ElasticsearchIndex(replace(good, ca_certs=str(other_ca)), index="x").exists()
    out = subprocess.run([sys.executable, "-m", "lsr.cli", "search", "--index", f"elasticsearch+https://127.0.0.1:"
                          f"{cfg.port}/x", "--user", "elastic", "--password-file", str(tmp_path / "k.pem"),
                          "--ca-certs", str(cfg.ca_file), "--model", str(tmp_path), "a dog"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    seen = [str(wrong.value), str(untrusted.value), repr(good), out.stdout, out.stderr, *capsys.readouterr()]
    for path in [*cfg.home.rglob("*.log"), *cfg.home.rglob("*.json"), *cfg.conf_dir.glob("*.yml"),
                 cfg.conf_dir / "elasticsearch.keystore"]:
        seen.append(path.read_bytes().decode("latin-1"))
    assert not any(password in text for text in seen)


def test_a_local_cluster_shares_one_install_and_names_its_first_node_master():
    """`lsr elasticsearch start --nodes 2` (checked by hand: both nodes joined in 55 s): the configs."""
    from lsr.node import elasticsearch as es

    base = es.EsNodeConfig.from_env(port=9280)
    first, second = es.cluster_configs(2, base)
    assert (first.port, second.port) == (9280, 9281) and first.install_dir == second.install_dir == base.install_dir
    for cfg in (first, second):
        text = es.render_config(cfg)
        assert "discovery.seed_hosts: [127.0.0.1:9380, 127.0.0.1:9381]" in text
        assert "cluster.initial_master_nodes: [lsr-es-node-1]" in text and "single-node" not in text
