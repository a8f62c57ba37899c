"""`lsr compare`: R@K of one system against another on the same queries, with paired significance tests.

    lsr compare --qrels runs/x/runs/f30k-test.i2t.qrels --run runs/x/runs/f30k-test.d2s-exp.i2t.run \\
        --against runs/x/runs/f30k-test.dense.i2t.run

Several --run files (seeds of one system) are averaged query by query; see `lsr.eval.significance`.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="R@K of one system's TREC run(s) against another's: paired bootstrap + McNemar")
    p.add_argument("--qrels", required=True, help="TREC qrels of the split and direction both runs rank")
    p.add_argument("--run", required=True, nargs="+", metavar="RUN",
                   help="system A: one TREC run, or several (seeds), averaged query by query")
    p.add_argument("--against", required=True, metavar="RUN", help="system B: one TREC run")
    p.add_argument("--k", type=int, nargs="+", default=[1, 5, 10], help="cut-offs (default: 1 5 10)")
    p.add_argument("--samples", type=int, default=10_000, help="bootstrap resamples of the queries")
    p.add_argument("--level", type=float, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--cluster", action=argparse.BooleanOptionalAction, default=True,
                   help="resample and test queries judged relevant to the same items (the captions of one image) "
                        "together (default); --no-cluster treats every query as an independent draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON here")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from lsr.eval.report import write_json
    from lsr.eval.significance import as_dicts, compare_runs, format_comparisons

    rows = compare_runs(args.run, args.against, args.qrels, args.k, args.samples, args.seed, args.level, args.cluster)
    what = args.run[0] if len(args.run) == 1 else f"the mean of {len(args.run)} runs"
    units = "" if rows[0].clusters == rows[0].queries else f", resampled as {rows[0].clusters} clusters"
    print(f"A: {what}\nB: {args.against}\n{rows[0].queries} queries ({args.qrels}){units}")
    print(format_comparisons(rows, args.level))
    if args.json:
        record = {"qrels": args.qrels, "runs_a": args.run, "run_b": args.against, "samples": args.samples,
                  "level": args.level, "seed": args.seed, "cluster": args.cluster, "rows": as_dicts(rows)}
        write_json(args.json, record)
    return 0
