"""Command line for image folders: `lsr index-images DIR [--watch]`, `lsr search-images QUERY | --image FILE`
with filters on what a photo is, and `lsr duplicates`.

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
    p.add_argument("--watch", action="store_true",
                   help="keep going: poll the folder and index new, changed, moved and deleted files as they "
                        "happen (implies --prune; stop with Ctrl-C at any moment)")
    p.add_argument("--interval", type=float, default=2.0, help="--watch: seconds between polls (default 2)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="--watch: leave files changed in the last SECONDS for the next poll (default 1)")
    p.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)  # tests: stop after N polls
    p.set_defaults(func=cmd_index_images)

    p = sub.add_parser("search-images", help="search an index built by index-images: by text or by an example "
                                             "image, with filters on folder, date taken, camera, size and type")
    add_query_args(p)
    p.add_argument("--image", default=None, metavar="FILE",
                   help="search by this example image (need not be indexed; decoded safely, never stored)")
    p.add_argument("--encoder", choices=sorted(IMAGE_ENCODERS), default=None,
                   help=f"default: the one recorded in STATE/{SETTINGS}")
    _add_encoder_args(p)
    add_backend_args(p, searching=True)
    _add_state_arg(p)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--no-expansion", action="store_true", help="dense encoders: keep only the query's own tokens")
    add_filter_args(p)
    p.add_argument("--min-score", type=float, default=None,
                   help="hide hits scoring below this (default: the encoder's documented floor, where known)")
    p.add_argument("--no-floor", action="store_true", help="show every hit, however weak")
    p.set_defaults(func=search_images)

    p = sub.add_parser("duplicates", help="list groups of near-duplicate photos in an index built by index-images")
    add_backend_args(p, searching=True)
    _add_state_arg(p)
    p.add_argument("--max-distance", type=int, default=None,
                   help="bits of the 64-bit perceptual hash that may differ (default 12, measured)")
    p.add_argument("--json", action="store_true", help="print the groups as JSON")
    p.set_defaults(func=cmd_duplicates)


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """Filters on what a photo is (`lsr.app.folders.photo_filter`), run inside the index."""
    g = p.add_argument_group("filters (run inside the index; combine freely)")
    g.add_argument("--folder", default=None, help="only this folder of the indexed one, and its sub-folders")
    g.add_argument("--taken-after", default=None, metavar="DATE",
                   help="taken on or after DATE (YYYY-MM-DD; EXIF DateTimeOriginal, else the file's time)")
    g.add_argument("--taken-before", default=None, metavar="DATE", help="taken before DATE (YYYY-MM-DD)")
    g.add_argument("--camera", default=None, help="camera make or model, any case (canon, 'canon eos 5d')")
    g.add_argument("--orientation", choices=("landscape", "portrait", "square"), default=None)
    g.add_argument("--type", dest="file_type", default=None, help="file type: jpeg, png, webp, gif, tiff, bmp")
    g.add_argument("--min-width", type=int, default=None, help="at least this many pixels wide")
    g.add_argument("--min-height", type=int, default=None, help="at least this many pixels high")


def filter_from_args(args: argparse.Namespace, root: str | None = None):
    """The `Filter` the filter flags ask for (None: none)."""
    from lsr.app.folders import photo_filter

    return photo_filter(folder=getattr(args, "folder", None), taken_after=getattr(args, "taken_after", None),
                        taken_before=getattr(args, "taken_before", None), camera=getattr(args, "camera", None),
                        orientation=getattr(args, "orientation", None), file_type=getattr(args, "file_type", None),
                        min_width=getattr(args, "min_width", None), min_height=getattr(args, "min_height", None),
                        root=root)


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
                            max_pixels=args.max_pixels, prune=args.prune or args.watch,
                            show_progress=sys.stderr.isatty() and not args.watch)
    if args.watch:
        return _watch(args, spec, options)
    result = index_folder(args.folder, spec, encoder_spec(args), options=options, state=args.state,
                          overwrite=args.overwrite, connection=connection_for(args, spec),
                          new=NewIndex(shards=args.shards, replicas=args.replicas))
    own_state = spec.backend == "embedded" and args.state is None
    print(f"{args.folder}: {result.report.summary()}; {result.index.count()} images in {spec.describe()}"
          + ("" if own_state else f" (state: {result.state})"))
    for path, reason in sorted(result.report.failed.items()):
        print(f"  failed {path}: {reason}")
    return 0


def _watch(args: argparse.Namespace, spec, options) -> int:
    """`index-images --watch`: rounds until Ctrl-C (or --rounds), one line per round that changed something."""
    import time

    from lsr.app.folders import open_folder_job
    from lsr.app.specs import NewIndex
    from lsr.app.watch import WatchOptions, watch

    job = open_folder_job(args.folder, spec, encoder_spec(args), options=options, state=args.state,
                          overwrite=args.overwrite, connection=connection_for(args, spec),
                          new=NewIndex(shards=args.shards, replicas=args.replicas))

    def report(result, took: float) -> None:
        print(f"{time.strftime('%H:%M:%S')} {result.summary()} ({took:.2f} s); {job.index.count()} images", flush=True)
        for path, reason in sorted(result.failed.items()):
            print(f"  failed {path}: {reason}", flush=True)

    print(f"watching {args.folder} into {spec.describe()} every {args.interval:g} s (Ctrl-C stops; safe at any "
          "moment)", flush=True)
    try:
        watch(job, WatchOptions(args.interval, args.settle, args.rounds), on_round=report)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        job.index.close()
    return 0


def open_image_searcher(args: argparse.Namespace):
    """The searcher over the image index the flags name, with the encoder its settings record."""
    from lsr.app.folders import open_folder_searcher

    spec = index_spec(args)
    return open_folder_searcher(spec, encoder_spec(args), state=getattr(args, "state", None),
                                connection=connection_for(args, spec))


def search_images(args: argparse.Namespace) -> int:
    """Search an image index by text or by an example image, with filters; also serves `lsr search --encoder
    NAME`. Hits under the score floor are left out (module `lsr.app.folders`, SCORE_FLOORS)."""
    from lsr.app.folders import folder_settings, score_floor

    searcher = open_image_searcher(args)
    settings = folder_settings(index_spec(args), getattr(args, "state", None))
    flt = filter_from_args(args, settings.get("folder"))
    expand = not getattr(args, "no_expansion", False)
    image = getattr(args, "image", None)
    texts = queries(args) if not image or args.words or args.query else []
    encoder_name = searcher.encoder.provenance().get("encoder")

    def floor(kind: str) -> float | None:
        if getattr(args, "no_floor", False):
            return None
        given = getattr(args, "min_score", None)
        return given if given is not None else score_floor(encoder_name, kind)

    searches: list[tuple[str, str]] = ([("image", image)] if image else []) + [("text", text) for text in texts]
    for kind, query in searches:
        vector = searcher.encode_image(query) if kind == "image" else searcher.encode_query(query, expand)
        print(f"{'image: ' + str(query) if kind == 'image' else 'query: ' + repr(query)} ({vector.nnz} terms: "
              + ", ".join(f"{t} {w:.2f}" for t, w in searcher.encoder.decode(vector, 8)) + ")")
        hits = searcher.search_vector(vector, k=args.k, retrieval=retrieval(args), filter=flt)  # encoded once
        cut = floor(kind)
        shown = [h for h in hits if cut is None or h.score >= cut]
        if not shown:
            print("  no good match" + (f" (best score {hits[0].score:.4f} is under the floor {cut:g}; --no-floor "
                                        "shows it)" if hits else " (nothing scored above zero)"))
        for rank, hit in enumerate(shown, 1):
            tokens = ", ".join(f"{t} {c:.3f}" for t, c in hit.top_tokens(5))
            print(f"  {rank}. {hit.score:.4f}  {hit.metadata.get('path', hit.id)}  [{tokens}]")
    return 0


def cmd_duplicates(args: argparse.Namespace) -> int:
    """Near-duplicate groups, largest first: each photo's path and size, the first one the largest file."""
    import json

    from lsr.app.duplicates import DEFAULT_MAX_DISTANCE, find_duplicates

    spec = index_spec(args)
    groups, unhashed = find_duplicates(spec, state=args.state, connection=connection_for(args, spec),
                                       max_distance=DEFAULT_MAX_DISTANCE if args.max_distance is None
                                       else args.max_distance)
    if args.json:
        print(json.dumps([[{"id": p.id, "path": p.path, "file_size": p.file_size, "width": p.width,
                            "height": p.height} for p in g.photos] for g in groups], indent=2))
        return 0
    for n, group in enumerate(groups, 1):
        print(f"group {n}: {len(group.photos)} photos, {group.reclaimable} bytes reclaimable by keeping the first")
        for photo in group.photos:
            print(f"  {photo.file_size or 0:>12,d}  {photo.width}x{photo.height}  {photo.path or photo.id}")
    print(f"{len(groups)} groups of near-duplicates, {sum(len(g.photos) for g in groups)} photos"
          + (f"; {len(unhashed)} photos have no hash yet (run lsr index-images again)" if unhashed else ""))
    return 0
