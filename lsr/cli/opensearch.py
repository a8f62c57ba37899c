"""`lsr opensearch start|stop|status`: the local OpenSearch node of `lsr.node.run`."""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(subparsers) -> None:
    """Register `opensearch` with its start / stop / status actions on the `lsr` sub-command parsers."""
    p = subparsers.add_parser("opensearch", help="start, stop or inspect a local OpenSearch node (no Docker)")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--port", type=int, default=None, help="HTTP port (default: LSR_OPENSEARCH_PORT or 9200)")
    p.add_argument("--home", default=None,
                   help="node home: install, data, logs (default: LSR_OPENSEARCH_HOME, else "
                        "/var/lib/lsr-opensearch as root, ~/.cache/lsr/opensearch otherwise)")
    p.add_argument("--heap", default=None, help="JVM heap, e.g. 1g or 512m (default: LSR_OPENSEARCH_HEAP or 1g)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health yellow/green")
    p.set_defaults(func=cmd_opensearch)


def cmd_opensearch(args: argparse.Namespace) -> int:
    """Run one action; `start` prints the URL, or the node's error log lines and exits 1."""
    from lsr.node import run as node

    cfg = node.NodeConfig.from_env(port=args.port, home=args.home, heap=args.heap)
    if args.action == "start":
        began = time.monotonic()
        try:
            url = node.start(cfg, timeout=args.timeout)
        except (node.NodeError, OSError) as exc:
            print(f"error: OpenSearch did not start: {exc}", file=sys.stderr)
            return 1
        print(url)
        print(f"ready after {time.monotonic() - began:.0f} s", file=sys.stderr)
        return 0
    if args.action == "stop":
        print("stopped" if node.stop(cfg) else f"not running (no live pid in {cfg.pid_file})")
        return 0
    st = node.status(cfg)
    print(f"running: {'yes' if st.running else 'no'}\npid: {st.pid or '-'}\nurl: {st.url}\n"
          f"version: {st.version or '-'}\nplugins: {', '.join(st.plugins) or '-'}")
    return 0 if st.running else 3
