"""Command line: `lsr demo | train | eval | index | search | export | reproduce | ...`.

Every command runs offline: models and vocabularies come from local directories.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from lsr.cli.train import add_data_args, add_train_args, cmd_train, train_config
from lsr.d2s.config import InferenceFreeConfig
from lsr.errors import LsrError

DEMO_QUERIES = ("a dog catching a frisbee", "two men playing guitars on a stage", "a little girl in a pink dress",
                "people riding bikes down a city street")


def cmd_demo(args) -> int:
    from lsr.app.training import ExperimentConfig, report_text, run_experiment

    cfg = ExperimentConfig(out_dir=args.out, train_images=args.train_images, train=train_config(args), procrustes=True)
    print(f"Demo on the caption proxy ({cfg.train.objective} objective): {args.train_images} Flickr30k train images "
          f"({4 * args.train_images} caption pairs), {args.epochs} epochs; evaluated on Flickr30k 1k test.")
    report = run_experiment(cfg)
    print(report_text(report))
    from lsr.app.indexing import index_split
    from lsr.app.open import load_encoder
    from lsr.cli.search import print_queries
    from lsr.search import SparseSearcher

    encoder = load_encoder(Path(args.out) / "model")
    result = index_split(Path(args.out) / "index", encoder, "proxy:f30k/test", dense=True,  # dense: re-ranking
                         overwrite=True)                                                     # and hybrid work
    print(f"indexed {result.report.indexed} documents of {result.source} into {Path(args.out) / 'index'}")
    print_queries(SparseSearcher(result.index, encoder), DEMO_QUERIES, k=3)
    return 0


def cmd_reproduce(args) -> int:
    from lsr.reproduce import load_rows, reproduce

    if args.list:
        for row in load_rows():
            print(f"{row['name']:<32} {row.get('command') or '(quoted, not measured here)'}")
        return 0
    outcomes = reproduce(args.only, check_only=args.check)
    for o in outcomes:
        print(f"{o.status:<9} {o.name:<32} {o.detail}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("OK", "FAIL", "NO SOURCE", "STALE")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["FAIL"] else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsr", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train on a caption-proxy subset, evaluate, index and query (offline)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--train-images", type=int, default=5000)
    add_train_args(p, only=("epochs", "batch_size", "objective"), defaults={"epochs": 4, "batch_size": 128},
                   helps={"batch_size": "pairs per step (smaller than the full run's: more updates on the small subset)"})
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train D2S, keep the best dev checkpoint, evaluate all scorers")
    p.add_argument("--out", default="runs/d2s")
    p.add_argument("--init", choices=("tied", "mlm", "random"), default="tied",
                   help="projector init: tied input word embeddings (default) or an MLM head")
    p.add_argument("--init-dir", default=None, help="local model directory for the init (default: offline MiniLM)")
    p.add_argument("--hidden-dim", type=int, default=None,
                   help="the model's hidden width (default: the init's, 384 for MiniLM), tied to the word "
                        "embeddings' principal subspace; a narrower model trains faster, with --lr scaled by 384 / "
                        "width")
    p.add_argument("--no-procrustes", action="store_true", help="skip the MiniLM->GloVe mapping baselines")
    p.add_argument("--no-baselines", action="store_true", help="skip the untrained-projection row")
    p.add_argument("--max-flops", type=float, default=5.0,
                   help="after training, choose on the dev split the smallest static-pruning threshold "
                        "(min_weight, saved with the model) whose FLOPs stay within this budget; 0 keeps all weights")
    g = p.add_argument_group("inference-free queries")
    g.add_argument("--query-encoder", choices=("d2s", "inference-free"), default="d2s",
                   help="inference-free: queries are their own tokens weighted by a learned table (no encoder "
                        "at query time); documents stay D2S vectors")
    g.add_argument("--documents", default=None, metavar="MODEL_DIR",
                   help="with inference-free: start the documents from this D2S model (default: a new projection)")
    g.add_argument("--freeze-documents", action="store_true",
                   help="with --documents: learn only the query table against the model's frozen documents")
    g.add_argument("--lr-table", type=float, default=InferenceFreeConfig.lr_table,
                   help=f"learning rate of the query table (default {InferenceFreeConfig.lr_table:g})")
    add_data_args(p, ("proxy:f30k/test", "proxy:coco/test"))
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("reproduce", help="check the documented results rows (docs/lab/) against results/reproduce.yaml")
    p.add_argument("--check", action="store_true", help="only compare the committed records (runs nothing)")
    p.add_argument("--only", nargs="+", default=(), metavar="NAME", help="these rows only")
    p.add_argument("--list", action="store_true", help="list the rows and their commands")
    p.set_defaults(func=cmd_reproduce)

    from lsr.cli.search import add_parsers as add_search_parsers
    add_search_parsers(sub)
    from lsr.cli.evaluate import add_parser as add_eval_parser
    add_eval_parser(sub)
    from lsr.cli.serve import add_parser as add_serve_parser
    add_serve_parser(sub)
    from lsr.cli.opensearch import add_parser as add_opensearch_parser
    add_opensearch_parser(sub)
    from lsr.cli.elasticsearch import add_parser as add_elasticsearch_parser
    add_elasticsearch_parser(sub)
    from lsr.cli.images import add_parser as add_images_parser
    add_images_parser(sub)
    from lsr.cli.encode import add_parser as add_encode_parser
    add_encode_parser(sub)
    from lsr.cli.compare import add_parser as add_compare_parser
    add_compare_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one `lsr` command. A library error (`lsr.errors.LsrError`, or a bad value, a missing file, an
    unreachable server) prints one line, ``error: ...``, and exits 2; `-v` shows the traceback too."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("lsr").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return args.func(args)
    except (LsrError, FileNotFoundError, ValueError, ConnectionError, PermissionError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
