"""A local OpenSearch cluster of several nodes on loopback ports, for trying (and testing) what scaling out
on OpenSearch itself gives: shards spread over nodes, replicas that keep answering when a node dies.

    from lsr.node import cluster
    nodes = cluster.cluster_configs(2)             # ports 9200, 9201 (transport 9300, 9301)
    urls = cluster.start_cluster(nodes)            # waits until every node has joined
    cluster.kill_node(nodes[1]); cluster.start_node(nodes[1]); cluster.stop_cluster(nodes)

The nodes share the single node's install (`lsr.node.install`) and keep their own config, data and logs
under ``HOME/CLUSTER/NODE``. The first node is the only cluster-manager-eligible one (a cluster of two
cannot keep a quorum of managers when either dies, so the others are data + ingest nodes): killing a
data node leaves a working cluster; for a cluster that survives losing any node, run three managers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from lsr.errors import InvalidInputError
from lsr.node.install import NodeConfig, NodeError
from lsr.node.run import _get_json, kill, start, stop

log = logging.getLogger(__name__)


def cluster_configs(nodes: int = 2, base: NodeConfig | None = None, http_port: int | None = None,
                    transport_port: int | None = None, name: str = "lsr-cluster",
                    heap: str = "512m") -> list[NodeConfig]:
    """The configs of `nodes` nodes of one cluster: HTTP ports from `http_port` (default the base's),
    transport ports from `transport_port` (default HTTP + 100), homes under the base home."""
    if nodes < 2:
        raise InvalidInputError(f"A cluster needs at least 2 nodes (got {nodes}); `lsr opensearch start` runs one.")
    base = base or NodeConfig.from_env()
    http_port = http_port or base.port
    transport_port = transport_port or http_port + 100
    names = tuple(f"{name}-node-{i + 1}" for i in range(nodes))
    seeds = tuple(transport_port + i for i in range(nodes))
    return [replace(base, home=base.home / name / names[i], install_home=base.install_home or base.home,
                    port=http_port + i, transport_port=seeds[i], seed_ports=seeds, managers=names[:1],
                    roles=None if i == 0 else ("data", "ingest"), name=names[i], cluster_name=name, heap=heap)
            for i in range(nodes)]


def wait_for_nodes(url: str, nodes: int, timeout: float = 180.0, status: str = "yellow") -> dict:
    """Cluster health once `nodes` nodes have joined and health is at least `status`."""
    deadline = time.monotonic() + timeout
    health: dict = {}
    while time.monotonic() < deadline:
        try:
            health = _get_json(f"{url}/_cluster/health?wait_for_nodes={nodes}&wait_for_status={status}&timeout=5s",
                               timeout=10)
            if not health.get("timed_out") and health.get("number_of_nodes") == nodes:
                return health
        except (OSError, ValueError):
            pass
        time.sleep(1.0)
    raise NodeError(f"The cluster at {url} did not reach {nodes} nodes and {status} health within {timeout:.0f} s "
                    f"(last: {health or 'no answer'}).")


def start_cluster(configs: list[NodeConfig], timeout: float = 240.0) -> list[str]:
    """Start every node (the cluster manager first) and wait until all have joined; returns their URLs."""
    for cfg in configs:
        start_node(cfg, timeout)
    wait_for_nodes(configs[0].url, len(configs), timeout)
    return [cfg.url for cfg in configs]


def start_node(cfg: NodeConfig, timeout: float = 240.0) -> str:
    """Start (or restart) one node; it answers once it has joined the cluster."""
    log.info("starting %s on %s", cfg.name, cfg.url)
    return start(cfg, timeout)


def kill_node(cfg: NodeConfig) -> bool:
    """SIGKILL one node (a crash)."""
    return kill(cfg)


def stop_cluster(configs: list[NodeConfig]) -> list[bool]:
    """Stop every node, data nodes first; returns which were running."""
    return [stop(cfg) for cfg in reversed(configs)]
