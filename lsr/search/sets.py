"""Set-of-embeddings items (DivE, Kim, Kim & Kwak, CVPR 2023): an item may carry several vectors.

Dense sets score with smooth-Chamfer similarity, as in DivE's released `similarity.py`:

    s(X, Y) = [ 1/(a|X|) sum_x log sum_y exp(a cos(x, y)) + 1/(a|Y|) sum_y log sum_x exp(a cos(x, y)) ] / 2

with `a` the temperature (16 in DivE's COCO script); the best pair (`max`) and the mean over pairs
(`mean`) are the baselines. Sparse sets keep each member's sparse vector and aggregate member scores
as OpenSearch's `nested` query does (`aggregate`); candidates found that way can be re-scored densely
(`rescore_sets`), since DivE's brute force over every pair does not scale to an index.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from lsr.backends.base import Hit, rescore
from lsr.backends.validate import SCORE_MODES
from lsr.errors import InvalidInputError

SET_SIMILARITIES = ("smooth_chamfer", "max", "mean")


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def smooth_chamfer(x: np.ndarray, y: np.ndarray, alpha: float = 16.0) -> float:
    """DivE's smooth-Chamfer similarity of two sets of L2-normalised rows."""
    c = alpha * (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T)
    return float((_logsumexp(c, 1).mean() + _logsumexp(c, 0).mean()) / (2.0 * alpha))


def set_similarity(x: np.ndarray, y: np.ndarray, how: str = "smooth_chamfer", alpha: float = 16.0) -> float:
    """One set against another: smooth_chamfer, or the max / mean cosine over all pairs."""
    if how == "smooth_chamfer":
        return smooth_chamfer(x, y, alpha)
    cos = np.asarray(x, np.float64) @ np.asarray(y, np.float64).T
    if how == "max":
        return float(cos.max())
    if how == "mean":
        return float(cos.mean())
    raise InvalidInputError(f"Unknown set similarity {how!r}; choose one of {', '.join(SET_SIMILARITIES)}.")


def set_scores(query_set: np.ndarray, doc_sets: Sequence[np.ndarray], how: str = "smooth_chamfer",
               alpha: float = 16.0) -> np.ndarray:
    """One query set against many document sets (float64, in order)."""
    return np.array([set_similarity(query_set, d, how, alpha) for d in doc_sets], dtype=np.float64)


def aggregate(member_scores: Sequence[float], how: str = "max") -> float:
    """A set's score from its members' scores, as OpenSearch's nested ``score_mode`` does: only matching
    members (score > 0) count, so ``avg`` averages over them; no matching member scores 0 (no match)."""
    if how not in SCORE_MODES:
        raise InvalidInputError(f"Unknown score mode {how!r}; choose one of {', '.join(SCORE_MODES)}.")
    s = np.asarray(member_scores, dtype=np.float64)
    s = s[s > 0]
    if s.size == 0:
        return 0.0
    return float(s.max() if how == "max" else s.sum() if how == "sum" else s.mean())


def rescore_sets(hits: list[Hit], query_set: np.ndarray, doc_sets: Mapping[str, np.ndarray],
                 how: str = "smooth_chamfer", alpha: float = 16.0) -> list[Hit]:
    """Re-score sparse set candidates by a dense set similarity (best first); misses stay misses."""
    if not hits:
        return []
    scores = set_scores(query_set, [doc_sets[h.id] for h in hits], how, alpha)
    return rescore(hits, scores, how)
