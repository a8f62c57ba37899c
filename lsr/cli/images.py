"""Command line for image folders: `lsr index-images DIR ...` and `lsr search-images QUERY ...`.

`lsr search QUERY --encoder NAME` reaches the same search through `search_images`. Both backends work
(`--backend embedded|opensearch`, flags shared with `lsr index | search` through `lsr.cli.backends`).

Besides the index, a folder index keeps state: the manifest (which files the backend holds, in which
version), the feature cache and the settings (which encoder built it). The embedded backend keeps it in
its index directory. For OpenSearch it lives in `--state DIR`, by default
`$XDG_CACHE_HOME/lsr/images/<host>-<port>/<index name>` (`~/.cache/...`): per user, outside the image
folder (which may be read-only or synced, and which `search-images` does not know) and outside the
OpenSearch node home, keyed by node and index so two nodes with an index of the same name never share a
manifest. Losing it is safe: the next run re-encodes and re-indexes every file under the same ids
(replacing, not duplicating); only files deleted meanwhile can no longer be pruned.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from lsr.cli.backends import add_backend_args, connection, describe, open_backend, search_options
from lsr.encoders.registry import IMAGE_ENCODERS

SETTINGS = "images.json"  # in the state directory: which encoder (and D2S model) built the index
MANIFEST = "images-manifest.parquet"
CACHE = "feature-cache"


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
    p.add_argument("query", nargs="+")
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


def default_state_dir(url: str, index_name: str) -> Path:
    """Where an OpenSearch folder index keeps its state unless `--state` says otherwise (module docstring)."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    node = f"{parts.hostname or 'localhost'}-{parts.port or (443 if parts.scheme == 'https' else 9200)}"
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "lsr" / "images" / node / index_name


def state_dir(args: argparse.Namespace) -> Path:
    """The state directory for these flags; refuses one inside the local OpenSearch node's home."""
    if getattr(args, "state", None):
        state = Path(args.state)
    elif args.backend == "embedded":
        return Path(args.index)
    else:
        state = default_state_dir(connection(args).url, args.index)
    if args.backend == "opensearch":
        from lsr.node.run import NodeConfig

        home = NodeConfig.from_env().home.resolve()
        if state.resolve().is_relative_to(home):
            raise ValueError(f"--state {state} lies inside the OpenSearch node home {home}, which the node "
                             "manager owns; pick a directory elsewhere.")
    return state


def _add_encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder-path", default=None,
                   help="local weights: BLIP directory, LAVIS .pth checkpoint, or EfficientNet .pth (optional)")
    p.add_argument("--tokenizer-dir", default=None, help="local bert-base-uncased tokenizer (LAVIS encoders)")
    p.add_argument("--model", default=None, help="D2S model directory (needed for dense encoders)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")


def cmd_index_images(args: argparse.Namespace) -> int:
    """Index (or update) a folder into the backend; prints the run's summary and each failed file."""
    from lsr.d2s.model import D2SModel
    from lsr.encoders.registry import load_image_encoder
    from lsr.images import index_image_folder
    from lsr.images.io import DEFAULT_MAX_PIXELS

    state = state_dir(args)
    encoder = load_image_encoder(args.encoder, args.encoder_path, args.device, args.tokenizer_dir)
    model = D2SModel.from_pretrained(args.model) if args.model else None
    vocab_size = model.config.vocab_size if model is not None else len(encoder.vocab)
    backend = open_backend(args, encoder.vocab, "update", vocab_size,
                           missing_hint=f"build one with `lsr index-images FOLDER --index {args.index}`")
    if args.overwrite:  # the old manifest describes documents that are gone now
        (state / MANIFEST).unlink(missing_ok=True)
    cache = None if args.no_cache else Path(args.cache) if args.cache else state / CACHE
    report = index_image_folder(
        args.folder, encoder, backend, model, manifest_path=state / MANIFEST, cache_dir=cache,
        batch_size=args.batch_size, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, prune=args.prune,
        show_progress=sys.stderr.isatty(),
    )
    settings = {"encoder": args.encoder, "encoder_path": args.encoder_path, "model": args.model,
                "tokenizer_dir": args.tokenizer_dir, "folder": str(Path(args.folder).absolute())}
    state.mkdir(parents=True, exist_ok=True)
    (state / SETTINGS).write_text(json.dumps(settings, indent=2))
    backend.record_provenance(sparse_encoder(encoder, model).provenance())
    backend.commit()
    print(f"{args.folder}: {report.summary()}; {backend.count()} images in {describe(args)}"
          + ("" if state == Path(args.index) else f" (state: {state})"))
    for path, reason in sorted(report.failed.items()):
        print(f"  failed {path}: {reason}")
    return 0


def sparse_encoder(encoder, model):
    """The `SparseEncoder` of an image encoder: label tokens as they are, a dense one with its D2S model."""
    from lsr.encoders.base import SparseImageEncoder
    from lsr.encoders.sparse import D2SEncoder, LabelTokenEncoder

    if isinstance(encoder, SparseImageEncoder):
        return LabelTokenEncoder(encoder)
    if model is None:
        raise ValueError(f"Encoder {encoder.name!r} needs the D2S model the index was built with (--model DIR).")
    return D2SEncoder(model, encoder, vocab=encoder.vocab)


def open_image_searcher(args: argparse.Namespace):
    """(searcher, settings) for the image index named by the backend flags: the encoder recorded in its
    state's images.json (or --encoder / --model), the backend opened for reading."""
    from lsr.d2s.model import D2SModel
    from lsr.encoders.registry import load_image_encoder
    from lsr.search import SparseSearcher

    state = state_dir(args)
    settings = json.loads((state / SETTINGS).read_text()) if (state / SETTINGS).is_file() else {}
    name = args.encoder or settings.get("encoder")
    if name is None:
        raise ValueError(f"No --encoder given and no {SETTINGS} in {state}: build the index with `lsr index-images "
                         f"FOLDER --index {args.index}` (same --backend, --url and --state), or pass --encoder.")
    same = name == settings.get("encoder")
    path = getattr(args, "encoder_path", None) or (settings.get("encoder_path") if same else None)
    model_dir = getattr(args, "model", None) or (settings.get("model") if same else None)
    tokenizer_dir = getattr(args, "tokenizer_dir", None) or (settings.get("tokenizer_dir") if same else None)
    image_encoder = load_image_encoder(name, path, getattr(args, "device", None), tokenizer_dir)
    encoder = sparse_encoder(image_encoder, D2SModel.from_pretrained(model_dir) if model_dir else None)
    backend = open_backend(args, encoder.vocab, "open",
                           missing_hint=f"build one with `lsr index-images FOLDER --index {args.index}`")
    return SparseSearcher(backend, encoder), settings


def search_images(args: argparse.Namespace) -> int:
    """Search an image index; also serves `lsr search --encoder NAME`."""
    searcher, _ = open_image_searcher(args)
    encoder = searcher.encoder
    text = " ".join(args.query) if isinstance(args.query, list) else args.query
    expand = not getattr(args, "no_expansion", False)
    query = searcher.encode_query(text, expand)
    print(f"query: {text!r} ({query.nnz} terms: "
          + ", ".join(f"{t} {w:.2f}" for t, w in encoder.decode(query, 8)) + ")")
    hits = searcher.search(text, k=args.k, expand=expand, **search_options(args))
    if not hits:
        print("  no matching images")
    for rank, hit in enumerate(hits, 1):
        tokens = ", ".join(f"{t} {c:.3f}" for t, c in searcher.top_tokens(hit, 5))
        print(f"  {rank}. {hit.score:.4f}  {hit.metadata.get('path', hit.id)}  [{tokens}]")
    return 0
