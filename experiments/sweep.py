"""Training sweeps measured on the dev split: one model per lambda (plotted as R@1 against FLOPs), or per
point of a grid over any `TrainConfig` fields (``--grid joint_w_sparse=0.5,1,2 expansion_decay=0,0.95``).

    python -m experiments.sweep --lambdas 1e-3 1e-2 1e-1 --out runs/sweep [training flags of `lsr train`]

With `max_flops`, each point is also measured after the static pruning chosen on dev for that budget,
so points of different sparsity compare at one cost.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import sys
from pathlib import Path
from typing import Sequence

from lsr.d2s.static_pruning import smallest_within, threshold_curve
from lsr.d2s.train import TrainConfig, train
from lsr.data.sources import load_pairs, load_split_spec
from lsr.eval.evaluate import evaluate_dense, evaluate_sparse
from lsr.eval.report import plot_r1_vs_flops, write_json
from experiments import run_main
from lsr.app.training import build_model
from lsr.vocab import Vocabulary

log = logging.getLogger(__name__)


def parse_grid(specs: Sequence[str]) -> dict[str, list]:
    """``["field=v1,v2", ...]`` -> {field: [values]}, each value cast to the `TrainConfig` field's type."""
    resolved = TrainConfig().resolved()
    types = {f.name: type(getattr(resolved, f.name)) for f in dataclasses.fields(TrainConfig)}
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"Grid entry {spec!r} is not FIELD=V1,V2,...; e.g. joint_w_sparse=0.5,1,2.")
        if name not in types:
            raise ValueError(f"Grid entry {spec!r}: {name!r} is not a training setting; choose from "
                             f"{', '.join(sorted(types))}.")
        cast = types[name] if types[name] in (int, float, str) else str
        try:
            grid[name] = [cast(v.strip()) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"Grid entry {spec!r}: {name} takes {cast.__name__} values.") from None
    return grid


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values (the cartesian product), in order."""
    if not grid:
        return []
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def run_sweep(lambdas: Sequence[float], out_dir: str | Path, data: str = "proxy:f30k",
              train_images: int | None = None, dev: str = "proxy:f30k/dev",
              base: TrainConfig | None = None, grid: dict[str, list] | None = None,
              max_flops: float | None = None) -> dict:
    """Train one model per point (lambda_q = lambda_d = each of `lambdas`, or each point of `grid`); every
    point is measured on `dev` (selection data), expanded and no-expansion, and pruned to `max_flops`."""
    out = Path(out_dir)
    vocab = Vocabulary()
    train_split = load_pairs(data, "train", max_images=train_images, vocab=vocab)
    dev_split = load_split_spec(dev, vocab)
    base = base or TrainConfig()
    settings = [{"lambda_q": lam, "lambda_d": lam} for lam in lambdas] + grid_points(grid or {})
    if not settings:
        raise ValueError("Nothing to sweep: give --lambdas or --grid FIELD=V1,V2.")
    points = []
    for setting in settings:
        cfg = dataclasses.replace(base, **setting).resolved()  # an objective in the grid brings its own defaults
        label = (f"{setting['lambda_q']:g}" if set(setting) == {"lambda_q", "lambda_d"}
                 else " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items()))
        model = build_model("tied", train_split.dense_dim)
        result = train(model, train_split, dev_split, cfg, out_dir=out / label.replace(" ", "_").replace("=", "-"))
        for expand in (True, False):
            m = evaluate_sparse(model, dev_split, expand_queries=expand)
            points.append({"label": label + ("" if expand else " noexp"), "setting": setting,
                           "lambda": cfg.lambda_q, "expanded": expand, "best_epoch": result.best_epoch,
                           "train_s": result.seconds, "flops": m["flops"], "query_nnz": m["query_nnz"],
                           "doc_nnz": m["doc_nnz"], "t2i": m["t2i"], "i2t": m["i2t"]})
        if max_flops:
            curve = threshold_curve(model, dev_split)
            threshold = smallest_within(curve, max_flops)
            at = next((p for p in curve if p.min_weight == threshold), None)
            points[-2]["pruned"] = None if at is None else dataclasses.asdict(at)
        log.info("sweep point %s: %s", label, points[-2])
    dense = evaluate_dense(dev_split)
    plot = plot_r1_vs_flops([p for p in points if p["expanded"]], out / "r1_vs_flops.png", dense,
                            title=f"D2S sweep on {dev_split.name} (caption proxy)")
    summary = {"split": dev_split.name, "dense": dense, "max_flops": max_flops, "points": points, "plot": str(plot)}
    write_json(out / "sweep.json", summary)
    return summary


def sweep_table(summary: dict) -> str:
    """One line per sweep point: dev R@1 both directions, FLOPs, and the same pruned to the budget."""
    lines = [f"dev split {summary['split']} (caption proxy); dense cosine t2i R@1 {summary['dense']['t2i']['R@1']:.1f} "
             f"i2t R@1 {summary['dense']['i2t']['R@1']:.1f}"]
    for p in summary["points"]:
        line = f"{p['label']:<48} t2i R@1 {p['t2i']['R@1']:5.1f}  i2t R@1 {p['i2t']['R@1']:5.1f}  FLOPs {p['flops']:7.2f}"
        pruned = p.get("pruned")
        if pruned:
            line += (f"   pruned (min_weight {pruned['min_weight']:g}): t2i {pruned['t2i_r1']:.1f} "
                     f"i2t {pruned['i2t_r1']:.1f} FLOPs {pruned['flops']:.2f}")
        elif "pruned" in p:
            line += f"   pruned: no threshold reaches FLOPs <= {summary['max_flops']}"
        lines.append(line)
    lines.append(f"plot: {summary['plot']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The sweep's flags: its own, the data flags and every training flag of `lsr train`."""
    from lsr.cli.train import add_data_args, add_train_args

    p = argparse.ArgumentParser(prog="python -m experiments.sweep",
                                description="Train one model per lambda or grid point, measure each on dev, "
                                            "plot R@1 against FLOPs.")
    p.add_argument("--lambdas", type=float, nargs="+", default=(), help="sparsity weights (lambda_q = lambda_d)")
    p.add_argument("--grid", nargs="+", default=(), metavar="FIELD=V1,V2",
                   help="training settings to sweep (every combination), e.g. joint_w_sparse=0.5,1,2 "
                        "expansion_decay=0,0.95")
    p.add_argument("--max-flops", type=float, default=None,
                   help="also measure each point pruned to this FLOPs budget on dev (static pruning)")
    p.add_argument("--out", default="runs/sweep")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    add_data_args(p, ())
    add_train_args(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from lsr.cli.train import train_config

    args = build_parser().parse_args(argv)

    def body() -> int:
        summary = run_sweep(args.lambdas, args.out, data=args.data, train_images=args.train_images, dev=args.dev,
                            base=train_config(args), grid=parse_grid(args.grid), max_flops=args.max_flops)
        print(sweep_table(summary))
        return 0

    return run_main(body, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
