"""Command line for image folders: `lsr index-images DIR ...` and `lsr search-images QUERY ...`.

`lsr search QUERY --encoder NAME` reaches the same search through `search_images`. Both backends work
(the `--index` address and flags shared with `lsr index | search` through `lsr.cli.backends`). Where the
folder state lives (manifest, feature cache, settings): `lsr.app.folders`.
"""

from __future__ import annotations

import argparse
import sys

from lsr.cli.backends import add_backend_args, add_query_args, connection_for, index_spec, queries, retrieval
from lsr.encoders.names import IMAGE_ENCODERS

SETTINGS, CACHE = "images.json", "feature-cache"  # as lsr.app.folders names them (help texts only)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the `index-images` and `search-images` commands to the `lsr` sub-command parser."""
    encoders = ", ".join(f"{k} ({v})" for k, v in IMAGE_ENCODERS.items())
    p = sub.add_parser("index-images", help="index a folder of images (recursively, incrementally)",
                       description=f"Encoders: {encoders}.")
    p.add_argument("folder", help="image folder; document ids are paths relative to it")
    p.add_argument("--encoder", choices=sorted(IMAGE_ENCODERS), default="efficientnet-labels")
    _add_encoder_args(p)
    add_backend_args(p, searching=False)
    _add_state_arg(p)
    p.add_argument("--cache", default=None, help=f"feature cache directory (default: STATE/{CACHE})")
    p.add_argument("--no-cache", action="store_true", help="do not read or write encoder features on disk")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (default ~89.5M, Pillow's)")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")
    p.set_defaults(func=cmd_index_images)

    p = sub.add_parser("search-images", help="text search over an index built by index-images")
    add_query_args(p)
    p.add_argument("--encoder", choices=sorted(IMAGE_ENCODERS), default=None,
                   help=f"default: the one recorded in STATE/{SETTINGS}")
    _add_encoder_args(p)
    add_backend_args(p, searching=True)
    _add_state_arg(p)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--no-expansion", action="store_true", help="dense encoders: keep only the query's own tokens")
    p.set_defaults(func=search_images)


def _add_state_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", default=None,
                   help="directory for the manifest, feature cache and settings (default: the index directory "
                        "for embedded; $XDG_CACHE_HOME/lsr/images/HOST-PORT/INDEX for opensearch)")


def _add_encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder-path", default=None,
                   help="local weights: BLIP directory, LAVIS .pth checkpoint, or EfficientNet .pth (optional)")
    p.add_argument("--tokenizer-dir", default=None, help="local bert-base-uncased tokenizer (LAVIS encoders)")
    p.add_argument("--model", default=None, help="D2S model directory (needed for dense encoders)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")


def encoder_spec(args: argparse.Namespace):
    """The `EncoderSpec` of the encoder flags (the image encoder unset: the one the index records)."""
    from lsr.app.open import EncoderSpec

    return EncoderSpec(model=getattr(args, "model", None), image_encoder=getattr(args, "encoder", None),
                       image_encoder_path=getattr(args, "encoder_path", None),
                       tokenizer_dir=getattr(args, "tokenizer_dir", None), device=getattr(args, "device", None))


def cmd_index_images(args: argparse.Namespace) -> int:
    """Index (or update) a folder into the backend; prints the run's summary and each failed file."""
    from lsr.app.folders import FolderOptions, index_folder
    from lsr.app.specs import NewIndex

    spec = index_spec(args)
    options = FolderOptions(cache=args.cache, use_cache=not args.no_cache, batch_size=args.batch_size,
                            max_pixels=args.max_pixels, prune=args.prune, show_progress=sys.stderr.isatty())
    result = index_folder(args.folder, spec, encoder_spec(args), options=options, state=args.state,
                          overwrite=args.overwrite, connection=connection_for(args, spec),
                          new=NewIndex(shards=args.shards, replicas=args.replicas))
    own_state = spec.backend == "embedded" and args.state is None
    print(f"{args.folder}: {result.report.summary()}; {result.index.count()} images in {spec.describe()}"
          + ("" if own_state else f" (state: {result.state})"))
    for path, reason in sorted(result.report.failed.items()):
        print(f"  failed {path}: {reason}")
    return 0


def open_image_searcher(args: argparse.Namespace):
    """The searcher over the image index the flags name, with the encoder its settings record."""
    from lsr.app.folders import open_folder_searcher

    spec = index_spec(args)
    return open_folder_searcher(spec, encoder_spec(args), state=getattr(args, "state", None),
                                connection=connection_for(args, spec))


def search_images(args: argparse.Namespace) -> int:
    """Search an image index; also serves `lsr search --encoder NAME`."""
    searcher = open_image_searcher(args)
    expand = not getattr(args, "no_expansion", False)
    for text in queries(args):
        query = searcher.encode_query(text, expand)
        print(f"query: {text!r} ({query.nnz} terms: "
              + ", ".join(f"{t} {w:.2f}" for t, w in searcher.encoder.decode(query, 8)) + ")")
        hits = searcher.search(text, k=args.k, expand=expand, retrieval=retrieval(args))
        if not hits:
            print("  no matching images")
        for rank, hit in enumerate(hits, 1):
            tokens = ", ".join(f"{t} {c:.3f}" for t, c in hit.top_tokens(5))
            print(f"  {rank}. {hit.score:.4f}  {hit.metadata.get('path', hit.id)}  [{tokens}]")
    return 0
