"""`lsr opensearch export` and `lsr opensearch register --local`: the model's query encoder inside OpenSearch.

    lsr opensearch export --model runs/demo/model --out runs/demo/opensearch-local [--format onnx]
    lsr opensearch register --local --model runs/demo/model --index f30k

`register --local` takes a model directory (exported on the fly into the cache, once per model, format and
term cap) or an export folder; it installs DJL's PyTorch natives into the node `lsr opensearch start` runs
when it is that node (`lsr.node.djl`), uploads and deploys the model (reused by content hash), installs the
``sparse_encoding`` ingest pipeline and records the model on ``--index`` for `lsr search --server-side`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsr.errors import InvalidInputError

LOCAL_PIPELINE = "lsr-local-sparse-encoding"


def _export_dir(args: argparse.Namespace) -> Path:
    """--model as an export folder, or exported (once) into ~/.cache/lsr/opensearch-exports."""
    from lsr.encoders.export import EXPORT_CONFIG, ExportConfig, export_query_model

    model = Path(args.model)
    if (model / EXPORT_CONFIG).is_file():
        return model
    from lsr.encoders.sparse import D2SEncoder

    encoder = D2SEncoder.from_pretrained(model)
    key = f"{encoder.provenance()['model_hash']}-{args.format}-{args.max_terms}{'' if not args.no_expansion else '-noexp'}"
    out = Path.home() / ".cache" / "lsr" / "opensearch-exports" / key
    if (out / EXPORT_CONFIG).is_file() and ExportConfig.load(out).zip_sha256:
        return out
    print(f"exporting {model} ({args.format}, top {args.max_terms} terms) into {out}")
    export_query_model(encoder, out, args.format, args.max_terms, expand=not args.no_expansion, source=model)
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from lsr.encoders.export import export_query_model
    from lsr.encoders.sparse import D2SEncoder

    if not args.model or not args.out:
        raise InvalidInputError("lsr opensearch export needs --model DIR (a trained D2S model) and --out DIR.")
    config = export_query_model(D2SEncoder.from_pretrained(args.model), args.out, args.format, args.max_terms,
                                expand=not args.no_expansion, source=args.model)
    print(f"wrote {args.out}/model.zip ({config.format}, model {config.model_hash}, top {config.max_terms} terms, "
          f"{'expanded' if config.expand else 'no expansion'}) and export.json")
    print(f"next: lsr opensearch register --local --model {args.out} --index NAME")
    return 0


def _managed_node(args: argparse.Namespace, url: str):
    """The `lsr opensearch start` node's config when `url` is that node, else None."""
    from lsr.node.install import NodeConfig

    cfg = NodeConfig.from_env(port=args.port, home=args.home)
    return cfg if url.rstrip("/") in (cfg.url, cfg.url.replace("127.0.0.1", "localhost")) and cfg.home.is_dir() else None


def cmd_register_local(args: argparse.Namespace, record_on_index) -> int:
    """Export if needed, install the natives (our node), upload + deploy, pipeline, record (with
    `record_on_index`, which also prints a curl line)."""
    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.backends.opensearch.local_model import register_local_model
    from lsr.backends.opensearch.ml import install_ingest_pipeline
    from lsr.cli.backends import connection

    if not args.model:
        raise InvalidInputError("--local needs --model DIR (a trained D2S model, or an `lsr opensearch export` folder).")
    export_dir = _export_dir(args)
    conn = connection(args)
    cfg = _managed_node(args, conn.url)
    if cfg is not None:
        from lsr.node import djl

        if not djl.installed(cfg):
            print(f"installing DJL's PyTorch natives into {djl.natives_dir(cfg)} (Maven Central, once)")
        djl.install_natives(cfg)
    index = OpenSearchIndex(conn, index=args.index or "lsr")
    name = args.name if args.name != "lsr-d2s" else "lsr-d2s-local"
    model = register_local_model(index.client, export_dir, name=name)
    pipeline = install_ingest_pipeline(index.client, model.model_id, name=LOCAL_PIPELINE)
    config = json.loads((export_dir / "export.json").read_text())
    print(f"model_id: {model.model_id}  ({model.model_format} SPARSE_ENCODING {model.name}, "
          f"{'reused' if model.reused else 'uploaded'}; runs inside the node, no `lsr serve`)")
    print(f"ingest pipeline: {pipeline}  (POST INDEX/_doc?pipeline={pipeline} with a \"caption\")")
    if args.index:
        record_on_index(index, conn.url, {"model_id": model.model_id, "function_name": "SPARSE_ENCODING",
                                           "model_format": model.model_format, "model_hash": model.model_hash,
                                           "max_terms": config.get("max_terms"), "expand": config.get("expand", True),
                                           "ingest_pipeline": pipeline})
    return 0
