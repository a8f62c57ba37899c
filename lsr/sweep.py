"""Sparsity sweep: one model per lambda, measured on the dev split, plotted as R@1 against FLOPs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from lsr.d2s.train import TrainConfig, train
from lsr.data.sources import load_pairs
from lsr.eval.evaluate import evaluate_dense, evaluate_sparse
from lsr.eval.report import plot_r1_vs_flops, write_json
from lsr.data.sources import load_split_spec
from lsr.experiment import build_model
from lsr.vocab import Vocabulary


def run_sweep(lambdas: Sequence[float], out_dir: str | Path, data: str = "proxy:f30k",
              train_images: int | None = None, dev: str = "proxy:f30k/dev",
              base: TrainConfig | None = None) -> dict:
    """Train with lambda_q = lambda_d = each value; every point is measured on `dev` (selection data)."""
    out = Path(out_dir)
    vocab = Vocabulary()
    train_split = load_pairs(data, "train", max_images=train_images, vocab=vocab)
    dev_split = load_split_spec(dev, vocab)
    base = base or TrainConfig()
    points = []
    for lam in lambdas:
        cfg = dataclasses.replace(base, lambda_q=lam, lambda_d=lam)
        model = build_model("tied", train_split.dense_dim)
        train(model, train_split, dev_split, cfg, out_dir=out / f"lambda_{lam:g}")
        for expand in (True, False):
            m = evaluate_sparse(model, dev_split, expand_queries=expand)
            points.append({"label": f"{lam:g}{'' if expand else ' noexp'}", "lambda": lam, "expanded": expand,
                           "flops": m["flops"], "query_nnz": m["query_nnz"], "doc_nnz": m["doc_nnz"],
                           "t2i": m["t2i"], "i2t": m["i2t"]})
    dense = evaluate_dense(dev_split)
    plot = plot_r1_vs_flops([p for p in points if p["expanded"]], out / "r1_vs_flops.png", dense,
                            title=f"D2S lambda sweep on {dev_split.name} (caption proxy)")
    summary = {"split": dev_split.name, "dense": dense, "points": points, "plot": str(plot)}
    write_json(out / "sweep.json", summary)
    return summary
