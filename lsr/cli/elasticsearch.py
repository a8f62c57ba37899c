"""`lsr elasticsearch start|stop|status`: the local Elasticsearch node of `lsr.node.elasticsearch`
(port 9250 by default, beside the OpenSearch node on 9200); `--nodes 2` a local cluster of two."""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(subparsers) -> None:
    """Register `elasticsearch` with its start / stop / status actions."""
    p = subparsers.add_parser("elasticsearch", help="start, stop or inspect a local Elasticsearch node (no Docker)")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--port", type=int, default=None, help="HTTP port (default: LSR_ELASTICSEARCH_PORT or 9250)")
    p.add_argument("--home", default=None,
                   help="node home: install, data, logs (default: LSR_ELASTICSEARCH_HOME, else "
                        "/var/lib/lsr-elasticsearch as root, ~/.cache/lsr/elasticsearch otherwise)")
    p.add_argument("--heap", default=None, help="largest JVM heap, e.g. 1g (default: LSR_ELASTICSEARCH_HEAP or 1g)")
    p.add_argument("--version", dest="es_version", default=None,
                   help="Elasticsearch version (default: LSR_ELASTICSEARCH_VERSION or 9.5.3; 8.x runs on Java 17)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health yellow/green")
    p.add_argument("--nodes", type=int, default=1, help="a local cluster of this many nodes on --port, --port+1 ...")
    p.set_defaults(func=cmd_elasticsearch)


def cmd_elasticsearch(args: argparse.Namespace) -> int:
    """`start` prints the URL (or the node's error lines and exits 1); `status` exits 3 when not running."""
    from lsr.node import elasticsearch as es

    cfg = es.EsNodeConfig.from_env(port=args.port, home=args.home, heap=args.heap, version=args.es_version)
    configs = es.cluster_configs(args.nodes, cfg) if args.nodes > 1 else [cfg]
    if args.action == "stop":
        stopped = sum(es.stop(c) for c in reversed(configs))
        print(f"stopped {stopped} of {len(configs)} node(s)" if stopped else
              f"not running (no live pid in {cfg.pid_file})")
        return 0
    if args.action == "start":
        began = time.monotonic()
        try:
            urls = [es.start(c, timeout=args.timeout) for c in configs]
            if len(configs) > 1:
                es.wait_for_nodes(configs[0], len(configs), args.timeout)
        except (es.NodeError, OSError) as exc:
            print(f"error: Elasticsearch did not start: {exc}", file=sys.stderr)
            return 1
        print(",".join(urls))
        print(f"ready after {time.monotonic() - began:.0f} s", file=sys.stderr)
        return 0
    st, identity = es.status(cfg)
    found = identity.describe() if identity is not None else "nothing"
    print(f"running: {'yes' if st.running else 'no'}\npid: {st.pid or '-'}\nurl: {st.url}\nanswers: {found}")
    if identity is not None and identity.engine != "elasticsearch":
        print(f"warning: {st.url} is not this manager's node; {cfg.move_hint}", file=sys.stderr)
    return 0 if st.running else 3
