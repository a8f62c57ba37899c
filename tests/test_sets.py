"""Set-of-embeddings items: smooth-Chamfer against brute force, nested aggregation in both backends."""

from __future__ import annotations

import numpy as np
import pytest

from lsr.backends.base import Hit
from lsr.backends.embedded_sets import EmbeddedSetIndex
from lsr.search.sets import aggregate, rescore_sets, set_scores, set_similarity, smooth_chamfer
from lsr.sparse import SparseVector
from tests.test_search_modes import assert_same_ranking


def unit_rows(rng, n: int, d: int = 6) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_smooth_chamfer(x, y, a):
    left = sum(np.log(sum(np.exp(a * float(xi @ yj)) for yj in y)) for xi in x) / (a * len(x))
    right = sum(np.log(sum(np.exp(a * float(xi @ yj)) for xi in x)) for yj in y) / (a * len(y))
    return (left + right) / 2


@pytest.mark.parametrize("nx,ny,alpha", [(1, 1, 16.0), (2, 5, 16.0), (4, 3, 4.0), (3, 3, 64.0)])
def test_smooth_chamfer_equals_the_brute_force_formula(nx, ny, alpha):
    rng = np.random.default_rng(nx * 10 + ny)
    x, y = unit_rows(rng, nx), unit_rows(rng, ny)
    assert smooth_chamfer(x, y, alpha) == pytest.approx(brute_smooth_chamfer(x, y, alpha), rel=1e-9)
    assert smooth_chamfer(x, y, alpha) == pytest.approx(smooth_chamfer(y, x, alpha))  # symmetric


def test_smooth_chamfer_tends_to_the_chamfer_mean_of_best_matches():
    rng = np.random.default_rng(3)
    x, y = unit_rows(rng, 3), unit_rows(rng, 4)
    cos = x @ y.T
    chamfer = (cos.max(axis=1).mean() + cos.max(axis=0).mean()) / 2
    assert smooth_chamfer(x, y, alpha=1e4) == pytest.approx(chamfer, abs=1e-3)
    assert set_similarity(x, y, "max") == pytest.approx(cos.max()) and set_similarity(x, y, "mean") == pytest.approx(cos.mean())
    assert set_scores(x, [y, x], "mean").shape == (2,)
    with pytest.raises(ValueError, match="Unknown set similarity"):
        set_similarity(x, y, "min")


def test_aggregate_counts_only_matching_members():
    assert aggregate([3.0, 0.0, 1.0], "max") == 3.0
    assert aggregate([3.0, 0.0, 1.0], "sum") == 4.0
    assert aggregate([3.0, 0.0, 1.0], "avg") == 2.0  # the zero member does not match: not averaged in
    assert aggregate([0.0, 0.0], "avg") == 0.0
    with pytest.raises(ValueError, match="Unknown score mode"):
        aggregate([1.0], "median")


def sv(d):
    return SparseVector.from_dict(d)


def test_embedded_set_index_modes_replacement_failures_and_persistence(tmp_path):
    index = EmbeddedSetIndex(vocab_size=50, directory=tmp_path / "sets")
    report = index.index(["a", "b", "c", "d"], [[sv({1: 1.0}), sv({1: 3.0, 2: 1.0})], [sv({2: 2.0})],
                                                [sv({1: 1.0}), {1: -1.0}], []])
    assert report.indexed == 2 and set(report.failed) == {"c", "d"}
    assert report.failed["c"].startswith("member 1: token 1 has a negative weight") and "no member" in report.failed["d"]
    q = sv({1: 1.0, 2: 1.0})
    assert [(h.id, h.score) for h in index.search(q, score_mode="max")] == [("a", 4.0), ("b", 2.0)]
    assert [(h.id, h.score) for h in index.search(q, score_mode="sum")] == [("a", 5.0), ("b", 2.0)]
    assert [(h.id, h.score) for h in index.search(q, score_mode="avg")] == [("a", 2.5), ("b", 2.0)]
    index.index(["a"], [[sv({3: 1.0})]], [{"caption": "new"}])  # replaces the whole set
    assert [h.id for h in index.search(q)] == ["b"] and index.count() == 2
    two = [sv({2: 1.0}), sv({3: 5.0})]  # a query-side set of two phrasings
    assert [(h.id, h.score) for h in index.search(two, query_mode="max")] == [("a", 5.0), ("b", 2.0)]
    assert [(h.id, h.score) for h in index.search(two, query_mode="avg")] == [("a", 2.5), ("b", 1.0)]
    index.commit()
    again = EmbeddedSetIndex.load(tmp_path / "sets")
    assert [(h.id, h.score, h.metadata) for h in again.search(sv({3: 1.0}))] == [("a", 1.0, {"caption": "new"})]
    assert again.delete(["a", "zz"]) == 1 and again.search(sv({3: 1.0})) == []


def test_dense_rescoring_of_set_candidates_keeps_misses():
    rng = np.random.default_rng(7)
    sets = {"a": unit_rows(rng, 2), "b": unit_rows(rng, 2), "c": unit_rows(rng, 2)}
    query = sets["b"][:1]
    hits = rescore_sets([Hit("a", 3.0), Hit("b", 1.0)], query, sets)
    assert [h.id for h in hits] == sorted(["a", "b"], key=lambda i: -smooth_chamfer(query, sets[i]))
    assert hits[0].stages["sparse"] in (3.0, 1.0) and "c" not in {h.id for h in hits}


def random_sets(n: int, seed: int):
    rng = np.random.default_rng(seed)

    def rv(m):
        t = np.sort(rng.choice(200, size=m, replace=False))
        return SparseVector(t, rng.gamma(1.0, 1.0, size=m).astype(np.float32))

    docs = [[rv(int(rng.integers(3, 10))) for _ in range(int(rng.integers(1, 4)))] for _ in range(n)]
    return [f"s{i}" for i in range(n)], docs, rv


@pytest.mark.opensearch
def test_nested_sets_in_opensearch_match_the_embedded_index(opensearch_url, vocab):
    """nested + neural_sparse with score_mode max / sum / avg, and query sets (dis_max, bool should), against
    the in-process aggregation: the same top-10 up to near-ties, scores within the 9-bit bound."""
    from uuid import uuid4

    from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND
    from lsr.backends.opensearch.sets import OpenSearchSetIndex

    ids, docs, rv = random_sets(200, seed=11)
    embedded = EmbeddedSetIndex(vocab_size=len(vocab))
    embedded.index(ids, docs)
    node = OpenSearchSetIndex(opensearch_url, index=f"lsr-test-sets-{uuid4().hex[:8]}", vocab=vocab)
    try:
        assert node.index(ids, docs).indexed == 200 and node.count() == 200
        for mode in ("max", "sum", "avg"):
            for _ in range(3):
                q = rv(8)
                assert_same_ranking(embedded.search(q, k=10, score_mode=mode), node.search(q, k=10, score_mode=mode),
                                    rel=2 * RELATIVE_SCORE_BOUND)
            pair = [rv(6), rv(6)]
            assert_same_ranking(embedded.search(pair, k=10, query_mode=mode), node.search(pair, k=10, query_mode=mode),
                                rel=2 * RELATIVE_SCORE_BOUND)
        assert node.index(["bad"], [[{1: float("nan")}]]).failed["bad"].startswith("member 0:")
        assert node.delete(["s0"]) == 1 and node.count() == 199
    finally:
        node.drop()


def test_the_experiments_vectorised_set_scores_equal_the_reference_functions():
    from lsr.eval.sets_experiment import dense_set_scores

    rng = np.random.default_rng(5)
    query, docs = unit_rows(rng, 2, 8), np.stack([unit_rows(rng, 3, 8) for _ in range(6)])
    for how in ("max", "mean", "smooth_chamfer"):
        assert dense_set_scores(query, docs, how) == pytest.approx([set_similarity(query, d, how) for d in docs])
