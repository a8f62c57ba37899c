"""Retrieval metrics in both directions from a (queries x documents) score matrix.

R@K follows the image-text retrieval convention: a query counts as a hit when ANY relevant item is in
its top K (for text->image there is one relevant image, so this equals recall; for image->text each
image has several relevant captions). MRR@10 is the reciprocal rank of the first relevant item.
Ranks break score ties by item order (stable), the same order written to TREC run files.
"""

from __future__ import annotations

import numpy as np

from lsr.topk import topk_indices

KS = (1, 5, 10)
DEPTH = 10


def _summarise(hits: np.ndarray) -> dict[str, float]:
    """Metrics (percentages) from a boolean (queries x depth) hit matrix."""
    out = {f"R@{k}": 100.0 * float(hits[:, :k].any(axis=1).mean()) for k in KS}
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    out["MRR@10"] = 100.0 * float(np.mean(1.0 / first))
    return out


def t2i_from_top(top: np.ndarray, query_doc: np.ndarray) -> dict[str, float]:
    """Text->image from ranked image rows (captions x depth; -1 pads a short ranking)."""
    return _summarise(top == np.asarray(query_doc)[:, None])


def i2t_from_top(top: np.ndarray, query_doc: np.ndarray) -> dict[str, float]:
    """Image->text from ranked caption rows (images x depth; -1 pads a short ranking)."""
    owner = np.where(top >= 0, np.asarray(query_doc)[np.maximum(top, 0)], -1)
    return _summarise(owner == np.arange(top.shape[0])[:, None])


def t2i_metrics(scores: np.ndarray, query_doc: np.ndarray) -> dict[str, float]:
    """Text->image: `scores` is (captions x images); caption i is relevant to image `query_doc[i]`."""
    return t2i_from_top(topk_indices(scores, DEPTH), query_doc)


def i2t_metrics(scores: np.ndarray, query_doc: np.ndarray) -> dict[str, float]:
    """Image->text: `scores` is (captions x images) as for `t2i_metrics`; each image ranks all captions."""
    return i2t_from_top(topk_indices(np.ascontiguousarray(scores.T), DEPTH), query_doc)


def both_directions(scores: np.ndarray, query_doc: np.ndarray) -> dict[str, dict[str, float]]:
    return {"t2i": t2i_metrics(scores, query_doc), "i2t": i2t_metrics(scores, query_doc)}
