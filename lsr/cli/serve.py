"""`lsr serve`: the search page over an index (`--index`), or the sparse encoding endpoint of a D2S model
(`--model` alone, for OpenSearch ML Commons), under uvicorn on 127.0.0.1."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from lsr.cli.backends import BACKENDS, add_connection_args, add_retrieval_arg
from lsr.errors import InvalidInputError

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the search page of an index (--index), or a D2S model's sparse encoding "
                                     "endpoint for OpenSearch ML Commons (--model alone)")
    p.add_argument("--index", default=None, metavar="ADDRESS",
                   help="serve the search page of this index: a directory, or opensearch://HOST:PORT/NAME (or the "
                        "name with --backend opensearch --url URL)")
    p.add_argument("--backend", choices=BACKENDS, default=None)
    p.add_argument("--kind", choices=("rank_features", "seismic"), default=None)
    add_retrieval_arg(p)
    p.add_argument("--state", default=None, help="the image index's state directory (as for lsr search-images)")
    p.add_argument("--model", default=None, help="D2S model directory: the encoding endpoint alone, or with --index "
                                                 "the model that encodes the page's queries")
    p.add_argument("--encoder", default=None, help="image encoder of an image index (default: from its images.json)")
    p.add_argument("--encoder-path", default=None)
    p.add_argument("--tokenizer-dir", default=None)
    p.add_argument("--root", action="append", default=None, metavar="DIR",
                   help="folder whose images the page may show (default: the folder the index was built from)")
    p.add_argument("--thumbs", default=None, metavar="DIR",
                   help="thumbnail cache (default: $XDG_CACHE_HOME/lsr/thumbs)")
    p.add_argument("--token", default=os.environ.get("LSR_SERVE_TOKEN"),
                   help="require this bearer token on every request (default: LSR_SERVE_TOKEN); "
                        "--token auto makes one up and prints the link")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only; others warn)")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: cuda when available)")
    p.add_argument("--max-texts", type=int, default=256, help="encoding endpoint: texts per request")
    p.add_argument("--max-batch", type=int, default=128, help="encoding endpoint: texts encoded together")
    add_connection_args(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as exc:
        raise InvalidInputError("lsr serve needs the [serve] extra: pip install 'mm-lsr-opensearch[serve]'.") from exc
    if args.index is None and args.model is None:
        raise InvalidInputError("lsr serve needs --index (the search page of an index) or --model (the encoding endpoint).")
    if args.host not in LOOPBACK:
        print(f"warning: --host {args.host} exposes the service beyond this machine"
              + ("" if args.token else "; anyone who can reach it can search and see the images (add --token)"),
              file=sys.stderr)
    if args.index is None:
        app, what = encoding_app(args), f"{args.model} at http://{args.host}:{args.port}/v1/sparse"
    else:
        app, what = search_app(args), f"the search page of {args.index} at http://{args.host}:{args.port}/"
        if args.token:
            what += f"?token={args.token}"
    print(f"serving {what}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def encoding_app(args: argparse.Namespace):
    from lsr.app.open import load_encoder
    from lsr.serve import ServeConfig, create_app

    encoder = load_encoder(args.model, device=args.device)
    encoder.dense  # load the dense encoder now, so the first request does not pay for it
    return create_app(encoder, ServeConfig(max_texts=args.max_texts, max_batch=args.max_batch))


def search_app(args: argparse.Namespace):
    """The search page of `args.index`: an image index (its images.json, or --encoder) or a D2S model's index."""
    from lsr.app.folders import SETTINGS, folder_settings, state_dir
    from lsr.app.open import load_encoder
    from lsr.cli.backends import connection_for, index_spec, open_index_from_args, retrieval
    from lsr.cli.images import open_image_searcher
    from lsr.search import SparseSearcher
    from lsr.serve.files import ImageFiles
    from lsr.serve.page import create_search_app
    from lsr.serve.search import SearchService

    if args.token == "auto":
        args.token = secrets.token_urlsafe(24)
    spec = index_spec(args)
    conn = connection_for(args, spec)
    settings: dict = {}
    if args.encoder or (state_dir(spec, args.state, conn) / SETTINGS).is_file() or not args.model:
        searcher = open_image_searcher(args)
        settings = folder_settings(spec, args.state, conn)
    else:
        encoder = load_encoder(args.model, device=args.device)
        searcher = SparseSearcher(open_index_from_args(args, encoder.vocab, missing_hint="build it with lsr index"),
                                  encoder)
    roots = args.root or ([settings["folder"]] if settings.get("folder") else [])
    cache = Path(args.thumbs) if args.thumbs else \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lsr" / "thumbs"
    files = ImageFiles(roots, cache) if roots else None
    service = SearchService(searcher, files, retrieval=retrieval(args))
    return create_search_app(service, files, token=args.token)
