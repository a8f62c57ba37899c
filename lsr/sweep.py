"""Training sweeps measured on the dev split: one model per lambda (plotted as R@1 against FLOPs), or per
point of a grid over any `TrainConfig` fields (``--grid joint_w_sparse=0.5,1,2 expansion_decay=0,0.95``).

With `max_flops`, each point is also measured after the static pruning chosen on dev for that budget,
so points of different sparsity compare at one cost.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from pathlib import Path
from typing import Sequence

from lsr.d2s.static_pruning import smallest_within, threshold_curve
from lsr.d2s.train import TrainConfig, train
from lsr.data.sources import load_pairs, load_split_spec
from lsr.eval.evaluate import evaluate_dense, evaluate_sparse
from lsr.eval.report import plot_r1_vs_flops, write_json
from lsr.experiment import build_model
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
