"""Choose the static-pruning threshold (`D2SConfig.min_weight`) on a validation split.

Weights at or below the threshold are dropped from queries and documents alike. The threshold is the
smallest one on a grid whose expanded-query FLOPs on the validation split stay within a budget, so the
test splits never influence it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from lsr.data.split import PairedSplit
from lsr.errors import InvalidInputError
from lsr.eval.metrics import both_directions
from lsr.sparse import flops

log = logging.getLogger(__name__)

DEFAULT_GRID = tuple(np.round(np.arange(0.0, 1.0001, 0.025), 3))


@dataclass
class ThresholdPoint:
    min_weight: float
    flops: float
    query_nnz: float
    doc_nnz: float
    t2i_r1: float
    i2t_r1: float


def threshold_curve(model, split: PairedSplit, grid: tuple[float, ...] = DEFAULT_GRID) -> list[ThresholdPoint]:
    """FLOPs, non-zeros and R@1 (both directions, expanded queries) of `split` at each threshold."""
    queries = model.encode(split.query_emb, min_weight=0.0)
    docs = model.encode(split.doc_emb, min_weight=0.0)
    points = []
    for t in sorted(grid):
        q, d = queries.keep_above(t), docs.keep_above(t)
        metrics = both_directions(q.dot(d), split.query_doc)
        points.append(ThresholdPoint(float(t), flops(q, d), q.sparsity()["mean_nnz"], d.sparsity()["mean_nnz"],
                                     metrics["t2i"]["R@1"], metrics["i2t"]["R@1"]))
    return points


def smallest_within(curve: list[ThresholdPoint], max_flops: float) -> float | None:
    """The smallest threshold of `curve` whose FLOPs are <= `max_flops`, or None when none is."""
    if max_flops <= 0:
        raise InvalidInputError(f"max_flops must be positive, got {max_flops}.")
    within = [p.min_weight for p in sorted(curve, key=lambda p: p.min_weight) if p.flops <= max_flops]
    return within[0] if within else None


def choose_min_weight(model, split: PairedSplit, max_flops: float, grid: tuple[float, ...] = DEFAULT_GRID,
                      curve: list[ThresholdPoint] | None = None) -> tuple[float, list[dict]]:
    """The smallest threshold of `grid` with FLOPs <= `max_flops` on `split`, and the whole curve (`curve`:
    one already computed for this model and split, as training keeps for its chosen epoch).

    Raises ValueError when no threshold of the grid reaches the budget (extend the grid or retrain with
    a larger sparsity weight).
    """
    if max_flops <= 0:
        raise InvalidInputError(f"max_flops must be positive, got {max_flops}.")
    if curve is None:
        curve = threshold_curve(model, split, grid)
    for point in curve:
        log.info("min_weight %.3f: FLOPs %.2f, nnz q %.1f d %.1f, R@1 t2i %.1f i2t %.1f", point.min_weight,
                 point.flops, point.query_nnz, point.doc_nnz, point.t2i_r1, point.i2t_r1)
    threshold = smallest_within(curve, max_flops)
    if threshold is None:
        raise InvalidInputError(f"No threshold up to {max(grid)} brings FLOPs on {split.name} to <= {max_flops} "
                         f"(lowest: {min(p.flops for p in curve):.2f}); retrain with a larger lambda.")
    return threshold, [asdict(p) for p in curve]
