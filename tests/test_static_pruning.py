"""Static pruning: the threshold chosen on a validation split for a FLOPs budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_split
from lsr.d2s.model import D2SConfig, D2SModel
from lsr.d2s.static_pruning import choose_min_weight, threshold_curve
from lsr.sparse import SparseBatch, flops


def tiny_model() -> D2SModel:
    torch.manual_seed(0)
    return D2SModel(D2SConfig(dense_dim=16, hidden_dim=32, vocab_size=2000))


def test_keep_above_matches_pruned_encoding():
    model = tiny_model()
    x = np.random.default_rng(1).normal(size=(10, 16)).astype(np.float32)
    full = model.encode(x)
    t = float(np.median(full.csr.data))
    np.testing.assert_array_equal(full.keep_above(t).csr.toarray(), model.encode(x, min_weight=t).csr.toarray())
    assert full.csr.nnz > full.keep_above(t).csr.nnz  # the original is left alone


def test_chosen_threshold_is_the_smallest_within_budget():
    model = tiny_model()
    dev = synthetic_split(n_docs=40, dim=16, vocab_size=2000)
    curve = threshold_curve(model, dev, grid=(0.0, 0.1, 0.2, 0.4, 0.8))
    assert [p.min_weight for p in curve] == [0.0, 0.1, 0.2, 0.4, 0.8]
    assert all(a.flops >= b.flops for a, b in zip(curve, curve[1:]))  # a higher threshold never adds work
    budget = (curve[1].flops + curve[2].flops) / 2  # between the 2nd and 3rd point: the 3rd is the answer
    assert curve[1].flops > curve[2].flops
    threshold, rows = choose_min_weight(model, dev, budget, grid=(0.0, 0.1, 0.2, 0.4, 0.8))
    assert threshold == 0.2 and len(rows) == 5
    q = model.encode(dev.query_emb, min_weight=threshold)
    d = model.encode(dev.doc_emb, min_weight=threshold)
    assert flops(q, d) == pytest.approx(rows[2]["flops"]) and flops(q, d) <= budget


def test_unreachable_budget_says_what_to_do():
    model = tiny_model()
    dev = synthetic_split(n_docs=20, dim=16, vocab_size=2000)
    with pytest.raises(ValueError, match="larger lambda"):
        choose_min_weight(model, dev, 1e-9, grid=(0.0, 0.01))
    with pytest.raises(ValueError, match="positive"):
        choose_min_weight(model, dev, 0.0)


def test_keep_above_on_empty_batch():
    empty = SparseBatch.from_vectors([], 100)
    assert len(empty.keep_above(0.5)) == 0


def test_smallest_within_picks_the_first_point_in_budget():
    from lsr.d2s.static_pruning import ThresholdPoint, smallest_within

    curve = [ThresholdPoint(t, f, 0, 0, 0, 0) for t, f in ((0.2, 3.0), (0.0, 9.0), (0.1, 5.0))]
    assert smallest_within(curve, 5.0) == 0.1 and smallest_within(curve, 1.0) is None
