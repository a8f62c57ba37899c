"""Command line for image folders: `lsr index-images DIR ...` and `lsr search-images QUERY ...`.

`lsr search QUERY --encoder NAME` reaches the same search through `search_images`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lsr.encoders.registry import IMAGE_ENCODERS

SETTINGS = "images.json"  # beside the index: which encoder (and D2S model) built it
MANIFEST = "images-manifest.parquet"
CACHE = "feature-cache"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add the `index-images` and `search-images` commands to the `lsr` sub-command parser."""
    encoders = ", ".join(f"{k} ({v})" for k, v in IMAGE_ENCODERS.items())
    p = sub.add_parser("index-images", help="index a folder of images (recursively, incrementally)",
                       description=f"Encoders: {encoders}.")
    p.add_argument("folder", help="image folder; document ids are paths relative to it")
    p.add_argument("--index", required=True, help="index directory (created or updated)")
    p.add_argument("--encoder", choices=sorted(IMAGE_ENCODERS), default="efficientnet-labels")
    _add_encoder_args(p)
    p.add_argument("--backend", default="embedded", help="index backend (embedded)")
    p.add_argument("--cache", default=None, help=f"feature cache directory (default: INDEX/{CACHE})")
    p.add_argument("--no-cache", action="store_true", help="do not read or write encoder features on disk")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (default ~89.5M, Pillow's)")
    p.add_argument("--prune", action="store_true", help="delete documents whose files are gone")
    p.set_defaults(func=cmd_index_images)

    p = sub.add_parser("search-images", help="text search over an index built by index-images")
    p.add_argument("query", nargs="+")
    p.add_argument("--index", required=True)
    p.add_argument("--encoder", choices=sorted(IMAGE_ENCODERS), default=None,
                   help=f"default: the one recorded in INDEX/{SETTINGS}")
    _add_encoder_args(p)
    p.add_argument("--backend", default="embedded")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--no-expansion", action="store_true", help="dense encoders: keep only the query's own tokens")
    p.set_defaults(func=search_images)


def _add_encoder_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder-path", default=None,
                   help="local weights: BLIP directory, LAVIS .pth checkpoint, or EfficientNet .pth (optional)")
    p.add_argument("--tokenizer-dir", default=None, help="local bert-base-uncased tokenizer (LAVIS encoders)")
    p.add_argument("--model", default=None, help="D2S model directory (needed for dense encoders)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")


def cmd_index_images(args: argparse.Namespace) -> int:
    from lsr.d2s.model import D2SModel
    from lsr.encoders.registry import load_image_encoder
    from lsr.images import index_image_folder
    from lsr.images.io import DEFAULT_MAX_PIXELS

    index_dir = Path(args.index)
    encoder = load_image_encoder(args.encoder, args.encoder_path, args.device, args.tokenizer_dir)
    model = D2SModel.from_pretrained(args.model) if args.model else None
    vocab_size = model.config.vocab_size if model is not None else len(encoder.vocab)
    backend, save = _open_backend(args.backend, index_dir, vocab_size, create=True)
    cache = None if args.no_cache else Path(args.cache) if args.cache else index_dir / CACHE
    report = index_image_folder(
        args.folder, encoder, backend, model, manifest_path=index_dir / MANIFEST, cache_dir=cache,
        batch_size=args.batch_size, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, prune=args.prune,
        commit=save, show_progress=sys.stderr.isatty(),
    )
    settings = {"encoder": args.encoder, "encoder_path": args.encoder_path, "model": args.model,
                "tokenizer_dir": args.tokenizer_dir, "folder": str(Path(args.folder).absolute())}
    (index_dir / SETTINGS).write_text(json.dumps(settings, indent=2))
    print(f"{args.folder}: {report.summary()}; {backend.count()} images in {index_dir}")
    for path, reason in sorted(report.failed.items()):
        print(f"  failed {path}: {reason}")
    return 0


def search_images(args: argparse.Namespace) -> int:
    """Search an image index; also serves `lsr search --encoder NAME`."""
    from lsr.d2s.model import D2SModel
    from lsr.encoders.base import SparseImageEncoder
    from lsr.encoders.registry import load_image_encoder
    from lsr.search import SparseSearcher

    index_dir = Path(args.index)
    settings = json.loads((index_dir / SETTINGS).read_text()) if (index_dir / SETTINGS).is_file() else {}
    name = args.encoder or settings.get("encoder")
    if name is None:
        raise ValueError(f"No --encoder given and no {SETTINGS} in {index_dir}; pass --encoder.")
    same = name == settings.get("encoder")
    path = getattr(args, "encoder_path", None) or (settings.get("encoder_path") if same else None)
    model_dir = getattr(args, "model", None) or (settings.get("model") if same else None)
    tokenizer_dir = getattr(args, "tokenizer_dir", None) or (settings.get("tokenizer_dir") if same else None)
    encoder = load_image_encoder(name, path, getattr(args, "device", None), tokenizer_dir)
    backend, _ = _open_backend(getattr(args, "backend", "embedded"), index_dir, None, create=False)
    text = " ".join(args.query) if isinstance(args.query, list) else args.query
    if isinstance(encoder, SparseImageEncoder):
        query = encoder.encode_query(text)
        vocab = encoder.vocab
    else:
        if model_dir is None:
            raise ValueError(f"Encoder {name!r} needs the D2S model the index was built with (--model DIR).")
        searcher = SparseSearcher(backend, D2SModel.from_pretrained(model_dir), encoder, encoder.vocab)
        query = searcher.encode_query(text, expand=not getattr(args, "no_expansion", False))
        vocab = encoder.vocab
    print(f"query: {text!r} ({query.nnz} terms: " + ", ".join(f"{t} {w:.2f}" for t, w in query.decode(vocab, 8)) + ")")
    hits = backend.search(query, k=args.k, explain=True)
    if not hits:
        print("  no matching images")
    for rank, hit in enumerate(hits, 1):
        top = sorted((hit.contributions or {}).items(), key=lambda kv: -kv[1])[:5]
        tokens = ", ".join(f"{vocab.token(t)} {c:.3f}" for t, c in top)
        print(f"  {rank}. {hit.score:.4f}  {hit.metadata.get('path', hit.id)}  [{tokens}]")
    return 0


def _open_backend(kind: str, index_dir: Path, vocab_size: int | None, create: bool):
    """(backend, save callback) for `kind`; only the embedded index is available here."""
    from lsr.backends.embedded import EmbeddedIndex

    if kind != "embedded":
        raise ValueError(f"Backend {kind!r} is not available for image folders yet; use --backend embedded.")
    if (index_dir / "index.json").is_file():
        index = EmbeddedIndex.load(index_dir, mmap=False)
        if vocab_size is not None and index.vocab_size != vocab_size:
            raise ValueError(f"{index_dir} holds vectors over {index.vocab_size} tokens, the encoder gives "
                             f"{vocab_size}; use a new --index directory.")
    elif create:
        index = EmbeddedIndex(vocab_size=vocab_size)
    else:
        raise FileNotFoundError(f"No index in {index_dir}; build one with `lsr index-images FOLDER --index {index_dir}`.")
    return index, lambda: index.save(index_dir)
