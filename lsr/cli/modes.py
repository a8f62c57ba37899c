"""Command line for the scoring modes: `lsr modes rerank|hybrid|sets` (one results table each), and the
`--rerank` / `--hybrid` options that `lsr search` shares."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_search_mode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rerank", choices=("dense", "late", "itm"), default=None,
                   help="two-stage: re-score the sparse top --candidates (dense needs an index built with --dense, "
                        "late with --tokens, itm with --itm-model)")
    p.add_argument("--candidates", type=int, default=100, help="stage-1 candidates for --rerank")
    p.add_argument("--hybrid", default=None, metavar="SPEC",
                   help="fuse sparse and dense: rrf, min_max[:W], l2[:W], z_score[:W] (W: the sparse weight)")
    p.add_argument("--depth", type=int, default=100, help="results per part for --hybrid")
    p.add_argument("--itm-model", default=None, help="local BLIP ITM model directory for --rerank itm")
    p.add_argument("--set-mode", choices=("max", "sum", "avg"), default=None,
                   help="search a set index (lsr index --sets N), member scores aggregated this way")
    p.add_argument("--query-set", action="store_true",
                   help="with --set-mode: the query arguments are phrasings of one query, their set scores summed")


def open_set_index(args: argparse.Namespace, vocab, create: bool):
    """The set index named by --backend / --index (embedded: a directory; OpenSearch: an index name)."""
    if args.backend == "opensearch":
        from lsr.backends.opensearch.sets import OpenSearchSetIndex
        from lsr.cli.backends import connection

        return OpenSearchSetIndex(connection(args), index=args.index, vocab=vocab)
    from lsr.backends.embedded_sets import EmbeddedSetIndex

    if create:
        return EmbeddedSetIndex(vocab_size=len(vocab), directory=args.index)
    return EmbeddedSetIndex.load(args.index)


def index_sets(args: argparse.Namespace, split, encoder, vocab) -> None:
    """`lsr index --sets N`: each document is the set of its first N captions (caption 0 and the first
    N - 1 of its query captions), each member a D2S vector of its own."""
    import numpy as np

    if args.sets < 1:
        raise ValueError(f"--sets takes the number of members per document (>= 1), got {args.sets}.")
    members = []
    for d in range(len(split.doc_ids)):
        rows = np.flatnonzero(split.query_doc == d)[: args.sets - 1]
        members.append(list(encoder.encode_dense(np.vstack([split.doc_emb[d:d + 1], split.query_emb[rows]]))))
    index = open_set_index(args, vocab, create=True)
    report = index.index(split.doc_ids, members, [{"caption": t} for t in split.doc_texts] if split.doc_texts else None)
    if args.backend == "embedded":
        index.commit()
    print(f"indexed {report.indexed} set documents of {split.name} ({args.sets} members each) into {args.index}; "
          f"{len(report.failed)} failed")


def search_sets(args: argparse.Namespace, encoder) -> int:
    """`lsr search --set-mode MODE`: search a set index through the searcher, member scores aggregated by
    MODE; with --query-set the query words are several phrasings of one query."""
    from lsr.search import SparseSearcher

    searcher = SparseSearcher(open_set_index(args, encoder.vocab, create=False), encoder)
    queries = [list(args.query)] if args.query_set else list(args.query)
    for query in queries:
        print(f"\nquery: {query!r}  (sets, {args.set_mode} over members)")
        hits = searcher.search(query, k=args.k, expand=not args.no_expansion, score_mode=args.set_mode)
        for rank, hit in enumerate(hits, 1):
            print(f"  {rank}. {hit.id} score {hit.score:.3f}  {hit.metadata.get('caption', '')}")
    return 0


def mode_options(args: argparse.Namespace) -> dict:
    if args.rerank is not None:
        return {"rerank": args.rerank, "candidates": args.candidates}
    if args.hybrid is not None:
        return {"hybrid": args.hybrid, "depth": args.depth}
    return {}


def cmd_modes(args) -> int:
    from lsr.eval import modes

    if args.table == "rerank":
        report = modes.rerank_table(args.model, args.split, args.candidates, args.latency_queries,
                                    late=not args.no_late, opensearch_url=args.opensearch)
    elif args.table == "hybrid":
        report = modes.hybrid_table(args.model, args.dev, args.split, args.depth, args.latency_queries,
                                    opensearch_url=args.opensearch)
    elif args.table == "inference-free":
        from lsr.eval.inference_free import format_report, inference_free_table

        report = inference_free_table(args.model, args.table_only, args.joint, args.splits or SPLITS_IF,
                                      args.latency_queries, opensearch_url=args.opensearch)
        _write(args.out, report)
        print(format_report(report))
        return 0
    else:
        from lsr.eval.sets_experiment import run_sets_experiment

        report = run_sets_experiment(args.model, args.split, args.latency_queries)
    _write(args.out, report)
    print(modes.format_table(report))
    return 0


SPLITS_IF = ("proxy:f30k/test", "proxy:coco/test")


def _write(path: str | None, report: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1))


def add_parser(sub) -> None:
    p = sub.add_parser("modes", help="measure a scoring mode on the caption proxy (one results table)")
    p.add_argument("table", choices=("rerank", "hybrid", "sets", "inference-free"))
    p.add_argument("--model", required=True, help="D2S model directory (inference-free: the default model)")
    p.add_argument("--table-only", default=None, metavar="DIR",
                   help="inference-free: a table trained against --model's frozen documents (variant b)")
    p.add_argument("--joint", default=None, metavar="DIR",
                   help="inference-free: a table trained with its documents (variant c)")
    p.add_argument("--splits", nargs="+", default=None, metavar="SOURCE/SPLIT",
                   help="inference-free: reported splits (default: Flickr30k and COCO test)")
    p.add_argument("--split", default="proxy:f30k/test", metavar="SOURCE/SPLIT", help="reported split")
    p.add_argument("--dev", default="proxy:f30k/dev", metavar="SOURCE/SPLIT", help="hybrid: split to choose on")
    p.add_argument("--candidates", type=int, nargs="+", default=[20, 50, 100, 200, 1000])
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--latency-queries", type=int, default=200)
    p.add_argument("--no-late", action="store_true", help="rerank: skip late interaction")
    p.add_argument("--opensearch", default=None, metavar="URL",
                   help="rerank / hybrid: also run the modes inside this OpenSearch node (rows marked OpenSearch)")
    p.add_argument("--out", default=None, help="write the report as JSON")
    p.set_defaults(func=cmd_modes)
