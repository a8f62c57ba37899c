"""`lsr eval`: evaluate a saved model (dense cosine vs D2S expanded / no-expansion queries).

Without `--backend` scores come from the in-memory matrix product (exact, fast). With
`--backend embedded|opensearch` the D2S rows are also retrieved through that backend (`search_batch`
over an index of the split's images, and one of its captions for image->text), their TREC runs are
written from the hits, and each R@K is checked against the matrix reference within the backend's
weight bound (OpenSearch: 9 significant bits; embedded: exact).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lsr.cli.backends import BACKENDS, add_connection_args
from lsr.errors import InvalidInputError

LABELS = {"D2S sparse, expanded queries": ("d2s-exp", True), "D2S sparse, no-expansion queries": ("d2s-noexp", False)}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a saved model: dense cosine vs D2S expanded / no-expansion",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--out", default="runs/eval")
    p.add_argument("--eval", nargs="+", default=["proxy:f30k/test"], metavar="SOURCE/SPLIT")
    p.add_argument("--min-weight", type=float, default=None,
                   help="static pruning: drop weights <= this from queries and documents (default: the model's)")
    p.add_argument("--max-flops", type=float, default=None,
                   help="choose --min-weight on --dev: the smallest threshold whose FLOPs stay within this budget")
    p.add_argument("--dev", default="proxy:f30k/dev", metavar="SOURCE/SPLIT", help="split for --max-flops")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="also retrieve the D2S rows through this backend and check them against the matrix path")
    add_connection_args(p)
    p.add_argument("--index-prefix", default="lsr-eval",
                   help="OpenSearch index names start with this (each is recreated)")
    p.add_argument("--rerank", choices=("dense",), default=None,
                   help="with --backend: also a row re-ranking the sparse top --candidates by dense cosine")
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--hybrid", default=None, metavar="SPEC",
                   help="with --backend: also a row fusing sparse and dense (rrf, min_max[:W], l2[:W], z_score[:W])")
    p.add_argument("--depth", type=int, default=100, help="results per part for --hybrid")
    p.set_defaults(func=cmd_eval)


def backend_factory(args: argparse.Namespace, vocab, split_name: str):
    """name -> an empty backend of `args.backend` for one collection of the evaluation."""
    if args.backend == "embedded":
        from lsr.backends.embedded import EmbeddedIndex

        return lambda name: EmbeddedIndex(vocab_size=len(vocab))
    from lsr.cli.backends import connection_for, index_spec

    if args.backend == "elasticsearch":
        from lsr.backends.elasticsearch import ElasticsearchIndex as Remote
    else:
        from lsr.backends.opensearch import OpenSearchIndex as Remote

    def make(name: str):
        index_name = re.sub(r"[^a-z0-9_-]+", "-", f"{args.index_prefix}-{split_name}-{name}".lower())
        spec = index_spec(argparse.Namespace(**{**vars(args), "index": index_name}))
        index = Remote(connection_for(args, spec), index=index_name, vocab=vocab)
        index.drop()  # the first write creates it afresh (with a dense field when the vectors come with one)
        return index

    return make


def cmd_eval(args) -> int:
    from lsr.d2s.model import D2SModel
    from lsr.data.sources import load_split_spec
    from lsr.eval.report import format_table, gap_to_reference, write_json
    from lsr.app.training import evaluate_all
    from lsr.vocab import Vocabulary

    vocab = Vocabulary()
    model = D2SModel.from_pretrained(args.model)
    if args.min_weight is not None and args.max_flops is not None:
        raise SystemExit("Give --min-weight or --max-flops, not both.")
    if args.min_weight is not None:
        model.config.min_weight = args.min_weight
    if args.max_flops is not None:
        from lsr.d2s.static_pruning import choose_min_weight

        model.config.min_weight, _ = choose_min_weight(model, load_split_spec(args.dev, vocab), args.max_flops)
        print(f"min_weight {model.config.min_weight:g}: the smallest with FLOPs <= {args.max_flops:g} on {args.dev}")
    results, checks, ok = {}, {}, True
    for spec in args.eval:
        split = load_split_spec(spec, vocab)
        rows = evaluate_all(model, split, Path(args.out) / "runs")
        if (args.rerank or args.hybrid) and not args.backend:
            raise InvalidInputError("--rerank and --hybrid evaluate through a backend: add --backend embedded|opensearch|elasticsearch.")
        if args.backend:
            checks[split.name] = through_backend(args, model, split, rows, vocab)
            ok = ok and all(c["ok"] for c in checks[split.name].values())
        results[split.name] = rows
        print(format_table(rows, title=f"== {split.name} ==  (caption proxy numbers where the source is proxy:)"))
        print(gap_to_reference(rows, "dense cosine (teacher)"))
        for label, check in checks.get(split.name, {}).items():
            print(f"{label}: {'OK' if check['ok'] else 'FAIL'}, largest R@K difference {check['max_diff']:.2f} "
                  f"points (allowed {check['max_allowed']:.2f})")
    write_json(Path(args.out) / "eval.json", {"model": args.model, "min_weight": model.config.min_weight,
                                               "backend": args.backend, "results": results, "backend_checks": checks})
    return 0 if ok else 1


def through_backend(args, model, split, rows: dict, vocab) -> dict:
    """Add "<label> via <backend>" rows to `rows`; return per label the comparison with the matrix row."""
    from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND
    from lsr.eval.run import evaluate_backend, tolerance

    bound = RELATIVE_SCORE_BOUND if args.backend in ("opensearch", "elasticsearch") else 0.0  # both 2^-8
    make = backend_factory(args, vocab, split.name)
    docs = model.encode(split.doc_emb)
    checks = {}
    for label, (tag, expand) in LABELS.items():
        queries = model.encode(split.query_emb, None if expand else split.query_tokens)
        found = evaluate_backend(make, split, queries, docs, f"{tag}-{args.backend}", Path(args.out) / "runs")
        found.update({key: rows[label][key] for key in ("query_nnz", "doc_nnz", "flops")})  # the same vectors
        rows[f"{label} via {args.backend}"] = found
        if label == "D2S sparse, expanded queries" and (args.rerank or args.hybrid):
            scoring = ({"rerank": args.rerank, "candidates": args.candidates} if args.rerank
                       else {"hybrid": args.hybrid, "depth": args.depth})
            mode = f"rerank {args.rerank}@{args.candidates}" if args.rerank else f"hybrid {args.hybrid}@{args.depth}"
            rows[f"{label} + {mode} via {args.backend}"] = evaluate_backend(
                make, split, queries, docs, f"{tag}-{mode.replace(' ', '-').replace(':', '')}-{args.backend}",
                Path(args.out) / "runs", scoring, dense=(model.dense_vectors(split.doc_emb),
                                                         model.dense_vectors(split.query_emb)))
        allowed = tolerance(queries.dot(docs), split.query_doc, bound)
        diffs = {(d, k): abs(found[d][k] - rows[label][d][k]) for d in ("t2i", "i2t") for k in allowed[d]}
        checks[label] = {"ok": all(diffs[d, k] <= allowed[d][k] + 1e-9 for d, k in diffs),
                         "max_diff": max(diffs.values()), "max_allowed": max(v for d in allowed.values() for v in d.values()),
                         "diff": {f"{d} {k}": v for (d, k), v in diffs.items()}, "allowed": allowed}
    return checks
