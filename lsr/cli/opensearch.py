"""`lsr opensearch start|stop|status`: the local OpenSearch node of `lsr.node.run`;
`lsr opensearch register`: a remote model on the node that calls `lsr serve`, so OpenSearch takes words;
`lsr opensearch register --inference-free --model DIR`: the model's query table as a SPARSE_TOKENIZE model,
so the node runs the whole query itself (no server of ours);
`lsr opensearch export --model DIR --out DIR` + `lsr opensearch register --local --model DIR`: the model's whole
query encoder as a LOCAL ML Commons model the node runs itself (`lsr.cli.opensearch_local`)."""

from __future__ import annotations

import argparse
import sys
import time

from lsr.errors import InvalidInputError


def add_parser(subparsers) -> None:
    """Register `opensearch` with its start / stop / status actions on the `lsr` sub-command parsers."""
    from lsr.cli.backends import add_connection_args

    p = subparsers.add_parser("opensearch", help="start, stop or inspect a local OpenSearch node (no Docker)")
    p.add_argument("action", choices=("start", "stop", "status", "register", "export"))
    p.add_argument("--port", type=int, default=None, help="HTTP port (default: LSR_OPENSEARCH_PORT or 9200)")
    p.add_argument("--home", default=None,
                   help="node home: install, data, logs (default: LSR_OPENSEARCH_HOME, else "
                        "/var/lib/lsr-opensearch as root, ~/.cache/lsr/opensearch otherwise)")
    p.add_argument("--heap", default=None, help="JVM heap, e.g. 1g or 512m (default: LSR_OPENSEARCH_HEAP or 1g)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for health yellow/green")
    p.add_argument("--nodes", type=int, default=1,
                   help="start / stop a local cluster of this many nodes on --port, --port+1 ... "
                        "(lsr.node.cluster; the first is the cluster manager)")
    g = p.add_argument_group("register")
    g.add_argument("--model", help="the D2S model directory `lsr serve` runs (checked against its /healthz)")
    g.add_argument("--serve-url", default="http://127.0.0.1:8001", help="where `lsr serve` listens")
    g.add_argument("--index", default=None, help="OpenSearch index to record the model id on (and search in curl)")
    g.add_argument("--name", default="lsr-d2s", help="connector and model name")
    g.add_argument("--no-expansion", action="store_true", help="queries keep only their own tokens")
    g.add_argument("--inference-free", action="store_true",
                   help="upload --model's query table as a SPARSE_TOKENIZE model (no `lsr serve` needed)")
    g.add_argument("--local", action="store_true",
                   help="upload --model (a D2S model or an `lsr opensearch export` folder) as a LOCAL "
                        "SPARSE_ENCODING model the node runs itself (no `lsr serve`)")
    g = p.add_argument_group("export / register --local")
    g.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript",
                   help="the exported module's engine (onnx needs the `onnx` extra)")
    g.add_argument("--max-terms", type=int, default=1024,
                   help="keep each query's heaviest N tokens inside the model (the clause limit is 1,024)")
    g.add_argument("--out", default=None, help="export: the folder to write model.zip and export.json to")
    add_connection_args(p)
    p.set_defaults(func=cmd_opensearch)


def cmd_opensearch(args: argparse.Namespace) -> int:
    """Run one action; `start` prints the URL, or the node's error log lines and exits 1."""
    from lsr.node import run as node

    if args.action == "export" or (args.action == "register" and args.local):
        from lsr.cli import opensearch_local

        return opensearch_local.cmd_export(args) if args.action == "export" else opensearch_local.cmd_register_local(args, _record_on_index)
    if args.action == "register":
        return cmd_register(args)
    cfg = node.NodeConfig.from_env(port=args.port, home=args.home, heap=args.heap)
    if args.nodes > 1 and args.action in ("start", "stop"):
        return _cluster_action(args, cfg)
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


def _serve_health(serve_url: str) -> dict:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"{serve_url.rstrip('/')}/healthz", timeout=10) as reply:
            return json.loads(reply.read())
    except OSError as exc:
        raise InvalidInputError(f"`lsr serve` does not answer at {serve_url} ({exc}); start it first: "
                         f"lsr serve --model DIR --port {serve_url.rsplit(':', 1)[-1].split('/')[0]} &") from exc


def _cluster_action(args: argparse.Namespace, cfg) -> int:
    """`lsr opensearch start|stop --nodes N`: a local cluster sharing the single node's install."""
    from lsr.node import cluster

    nodes = cluster.cluster_configs(args.nodes, cfg, heap=args.heap or "512m")
    if args.action == "stop":
        stopped = cluster.stop_cluster(nodes)
        print(f"stopped {sum(stopped)} of {len(nodes)} nodes")
        return 0
    try:
        urls = cluster.start_cluster(nodes, timeout=args.timeout)
    except (cluster.NodeError, OSError) as exc:
        print(f"error: the cluster did not start: {exc}", file=sys.stderr)
        return 1
    print(",".join(urls))  # what --url / OPENSEARCH_URL take for the whole cluster
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    """Register (or find) the remote model, install the ingest pipeline, record both, print a curl line."""
    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.backends.opensearch.ml import install_ingest_pipeline, register_remote_model
    from lsr.cli.backends import connection

    if args.inference_free:
        return register_inference_free(args)
    health = _serve_health(args.serve_url)
    if args.model:
        from lsr.encoders.sparse import D2SEncoder

        wanted = D2SEncoder.from_pretrained(args.model).provenance()["model_hash"]
        if health.get("model_hash") != wanted:
            raise InvalidInputError(f"`lsr serve` at {args.serve_url} runs model {health.get('model_hash')}, not {args.model} "
                             f"({wanted}); restart it with --model {args.model}.")
    conn = connection(args)
    index = OpenSearchIndex(conn, index=args.index or "lsr")
    model = register_remote_model(index.client, args.serve_url, name=args.name, expand=not args.no_expansion)
    pipeline = install_ingest_pipeline(index.client, model.model_id)
    print(f"model_id: {model.model_id}  (connector {model.connector_id}, endpoint {model.endpoint})")
    print(f"ingest pipeline: {pipeline}  (POST INDEX/_doc?pipeline={pipeline} with a \"caption\")")
    if args.index:
        _record_on_index(index, conn.url, {"model_id": model.model_id, "connector_id": model.connector_id,
                                      "endpoint": model.endpoint, "model_hash": health.get("model_hash"),
                                      "ingest_pipeline": pipeline})
    return 0


def _record_on_index(index, url: str, record: dict) -> None:
    """Record the model on the index (created if missing) and print a curl line that queries it with words."""
    if not index.client.indices.exists(index=index.index_name):
        index.create()
    index.record_remote_model(record)
    body = ('{"size": 5, "_source": ["caption", "path"], "query": {"neural_sparse": {"sparse": '
            f'{{"query_text": "a dog catching a frisbee", "model_id": "{record["model_id"]}"}}}}}}}}')
    print(f"curl -s -H 'Content-Type: application/json' {url}/{index.index_name}/_search -d '{body}'")


def register_inference_free(args: argparse.Namespace) -> int:
    """Upload the model's query table as a SPARSE_TOKENIZE model, record its id on the index, print a curl line."""
    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.backends.opensearch.tokenize_model import register_tokenize_model
    from lsr.cli.backends import connection
    from lsr.encoders.sparse import D2SEncoder, InferenceFreeEncoder

    if not args.model:
        raise InvalidInputError("--inference-free needs --model DIR (trained with `lsr train --query-encoder inference-free`).")
    encoder = D2SEncoder.from_pretrained(args.model)
    if not isinstance(encoder, InferenceFreeEncoder):
        raise InvalidInputError(f"{args.model} has no inference-free query table; train one with "
                         "`lsr train --query-encoder inference-free`.")
    conn = connection(args)
    index = OpenSearchIndex(conn, index=args.index or "lsr")
    name = args.name if args.name != "lsr-d2s" else "lsr-inference-free"
    model_id = register_tokenize_model(index.client, encoder.tokenize_model_files(), name=name)
    print(f"model_id: {model_id}  (SPARSE_TOKENIZE: tokenizer.json + idf.json of {args.model})")
    if args.index:
        _record_on_index(index, conn.url, {"model_id": model_id, "function_name": "SPARSE_TOKENIZE",
                                      "model_hash": encoder.provenance()["model_hash"]})
    return 0
