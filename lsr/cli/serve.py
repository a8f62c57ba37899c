"""`lsr serve --model DIR`: the sparse encoding endpoint (`lsr.serve.app`) under uvicorn, on 127.0.0.1."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a D2S model as a sparse encoding endpoint (for OpenSearch ML Commons)")
    p.add_argument("--model", required=True, help="saved D2S model directory (its dense encoder is built from its record)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: cuda when available)")
    p.add_argument("--max-texts", type=int, default=256, help="texts per request")
    p.add_argument("--max-batch", type=int, default=128, help="texts encoded together across concurrent requests")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as exc:
        raise ValueError("lsr serve needs the [serve] extra: pip install 'mm-lsr-opensearch[serve]'.") from exc
    from lsr.encoders.sparse import D2SEncoder
    from lsr.serve import ServeConfig, create_app

    encoder = D2SEncoder.from_pretrained(args.model, device=args.device)
    encoder.dense  # load the dense encoder now, so the first request does not pay for it
    app = create_app(encoder, ServeConfig(max_texts=args.max_texts, max_batch=args.max_batch))
    print(f"serving {args.model} ({encoder.name}) at http://{args.host}:{args.port}/v1/sparse", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
