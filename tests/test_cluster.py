"""Past one machine: a REAL two-node OpenSearch cluster on loopback ports (`lsr.node.cluster`). An index of
2 primary shards and 1 replica takes a bulk load through a client that knows both nodes; the data node
is killed; searches keep answering with the same top-10 and no document is lost; the node rejoins and
the cluster returns to green."""

from __future__ import annotations

import shutil
import time
import uuid

import numpy as np
import pytest

from lsr.sparse import SparseBatch, SparseVector

pytestmark = pytest.mark.opensearch
pytest.importorskip("opensearchpy")

HTTP_PORT, TRANSPORT_PORT = 9260, 9360  # away from the single node's 9200 / 9300
DOCS = 3000


@pytest.fixture(scope="module")
def cluster(opensearch_url):  # the single node's fixture installs OpenSearch; the cluster shares that install
    from lsr.node import cluster as local
    from lsr.node.run import NodeConfig

    nodes = local.cluster_configs(2, NodeConfig.from_env(), http_port=HTTP_PORT, transport_port=TRANSPORT_PORT,
                                  name="lsr-test-cluster")
    for cfg in nodes:  # a clean cluster each run (no state left from an earlier one)
        shutil.rmtree(cfg.home, ignore_errors=True)
    try:
        local.start_cluster(nodes)
    except Exception as exc:  # noqa: BLE001 - the logs say why; fail, never skip
        local.stop_cluster(nodes)
        pytest.fail(f"could not start a two-node cluster: {exc}", pytrace=False)
    yield nodes
    local.stop_cluster(nodes)
    for cfg in nodes:
        shutil.rmtree(cfg.home, ignore_errors=True)


def _docs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = []
    for _ in range(n):
        ids = np.unique(rng.integers(1000, 30522, size=20)).astype(np.int32)
        vectors.append(SparseVector(ids, rng.uniform(0.1, 1.0, size=len(ids)).astype(np.float32)))
    return [f"d{i}" for i in range(n)], SparseBatch.from_vectors(vectors)


def _green(client, index: str, wait: str) -> dict:
    return client.transport.perform_request("GET", f"/_cluster/health/{index}",
                                            params={"wait_for_status": "green", "timeout": wait,
                                                    "request_timeout": 180})


def test_a_replicated_index_survives_a_dead_node_and_heals(cluster, vocab):
    from lsr.backends.opensearch import Connection, OpenSearchIndex
    from lsr.node import cluster as local

    both = Connection(",".join(cfg.url for cfg in cluster), timeout=30)
    index = OpenSearchIndex(both, index=f"lsr-test-cluster-{uuid.uuid4().hex[:8]}", vocab=vocab)
    index.create(shards=2, replicas=1)
    ids, batch = _docs(DOCS)
    report = index.bulk(zip(ids, batch.rows(slice(0, DOCS)), [None] * DOCS), progress=False)
    assert report.indexed == DOCS and not report.failed
    index.commit()
    client = index.client
    health = _green(client, index.index_name, "60s")
    assert health["status"] == "green" and health["number_of_nodes"] == 2
    shards = client.cat.shards(index=index.index_name, format="json")
    assert {s["node"] for s in shards} == {cfg.name for cfg in cluster}  # spread over both nodes
    assert sorted(s["prirep"] for s in shards) == ["p", "p", "r", "r"]

    queries = [batch.rows(slice(i, i + 1))[0] for i in (0, 7, 1234, 2999)]
    before = [[(h.id, round(h.score, 4)) for h in index.search(q, k=10)] for q in queries]
    assert [b[0][0] for b in before] == ["d0", "d7", "d1234", "d2999"]

    assert local.kill_node(cluster[1])  # the data node dies
    deadline = time.monotonic() + 90
    after = None
    while time.monotonic() < deadline:  # searches answer throughout; the same top-10 once replicas took over
        after = [[(h.id, round(h.score, 4)) for h in index.search(q, k=10)] for q in queries]
        if after == before and index.count() == DOCS:
            break
        time.sleep(1)
    assert after == before and index.count() == DOCS  # nothing lost, same answers
    assert client.cluster.health()["number_of_nodes"] == 1

    local.start_node(cluster[1])  # the node rejoins; its copies are recovered and the cluster is green again
    health = _green(client, index.index_name, "120s")
    assert health["status"] == "green" and health["number_of_nodes"] == 2
    assert index.count() == DOCS
    assert [[(h.id, round(h.score, 4)) for h in index.search(q, k=10)] for q in queries] == before
    index.drop()
