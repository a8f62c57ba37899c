"""Command line for the scoring modes: the `--rerank` / `--hybrid` / `--set-mode` options of `lsr search`, and
set indexes (`lsr index --sets N`). The tables that measure each mode are lab drivers:
`python -m experiments.modes rerank|hybrid|sets|inference-free` in the checkout."""

from __future__ import annotations

import argparse


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
