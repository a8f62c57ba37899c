"""Set-of-embeddings items: smooth-Chamfer against brute force, nested aggregation in both backends."""

from __future__ import annotations

import numpy as np
import pytest

from lsr.backends.base import Hit
from lsr.backends.embedded_sets import EmbeddedSetIndex
from lsr.search.modes import Rerank, SetScoring
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


@pytest.mark.parametrize("engine", [pytest.param("opensearch", marks=pytest.mark.opensearch),
                                    pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def test_nested_sets_in_opensearch_match_the_embedded_index(engine, request, vocab):
    """nested + neural_sparse (OpenSearch) or nested sparse_vector (Elasticsearch) with score_mode max / sum /
    avg, and query sets (dis_max, bool should), against the in-process aggregation: the same top-10 up to
    near-ties, scores within the 9-bit bound."""
    from uuid import uuid4

    from lsr.backends.elasticsearch.sets import ElasticsearchSetIndex
    from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND
    from lsr.backends.opensearch.sets import OpenSearchSetIndex

    ids, docs, rv = random_sets(200, seed=11)
    embedded = EmbeddedSetIndex(vocab_size=len(vocab))
    embedded.index(ids, docs)
    kind = OpenSearchSetIndex if engine == "opensearch" else ElasticsearchSetIndex
    node = kind(request.getfixturevalue(f"{engine}_url"), index=f"lsr-test-sets-{uuid4().hex[:8]}", vocab=vocab)
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
    from experiments.sets import dense_set_scores

    rng = np.random.default_rng(5)
    query, docs = unit_rows(rng, 2, 8), np.stack([unit_rows(rng, 3, 8) for _ in range(6)])
    for how in ("max", "mean", "smooth_chamfer"):
        assert dense_set_scores(query, docs, how) == pytest.approx([set_similarity(query, d, how) for d in docs])


def searcher_over_sets(index, vocab):
    """A SparseSearcher over a set index of the tiny captions, two members (two captions) per document."""
    from lsr import D2SEncoder, SparseSearcher
    from tests.test_sparse_encoder import CAPTIONS, HashTextEncoder, tiny_model

    encoder = D2SEncoder(tiny_model(), HashTextEncoder(), vocab=vocab)
    members = [encoder.encode_document([CAPTIONS[i], CAPTIONS[(i + 1) % 4]]) for i in range(4)]
    assert index.index([f"d{i}" for i in range(4)], members).indexed == 4
    return SparseSearcher(index, encoder), encoder


def expected_set_ranking(encoder, query_texts, score_mode, query_mode="sum"):
    """The brute-force reference: member dot products aggregated per document, then over phrasings."""
    from lsr.backends.validate import prepare_query_set
    from tests.test_sparse_encoder import CAPTIONS

    n = len(encoder.vocab)
    q = np.zeros((len(query_texts), n))
    for row, prepared in enumerate(prepare_query_set(list(encoder.encode_query(query_texts)), n)):
        q[row, prepared.ids] = prepared.weights  # as backends score it: the phrasings share 1,024 terms
    scores = {}
    for i in range(4):
        m = encoder.encode_document([CAPTIONS[i], CAPTIONS[(i + 1) % 4]]).csr.toarray()
        per_phrasing = [aggregate((m @ row).tolist(), score_mode) for row in q]
        scores[f"d{i}"] = {"sum": sum, "max": max}[query_mode](per_phrasing)
    return sorted((d for d in scores if scores[d] > 0), key=lambda d: -scores[d]), scores


@pytest.mark.parametrize("score_mode", ["max", "sum", "avg"])
def test_the_searcher_searches_set_indexes_and_query_sets(vocab, score_mode):
    searcher, encoder = searcher_over_sets(EmbeddedSetIndex(vocab_size=len(vocab)), vocab)
    order, scores = expected_set_ranking(encoder, ["a dog runs on the grass"], score_mode)
    hits = searcher.search("a dog runs on the grass", k=4, mode=SetScoring(score_mode))
    assert [h.id for h in hits] == order[:4]
    assert [h.score for h in hits] == pytest.approx([scores[d] for d in order[:4]], rel=1e-5)
    pair = ["a dog runs on the grass", "a cat sleeps on a sofa"]
    order, scores = expected_set_ranking(encoder, pair, score_mode)
    hits = searcher.search(pair, k=4, mode=SetScoring(score_mode))  # a query set: phrasings summed
    assert [h.score for h in hits] == pytest.approx([scores[d] for d in order[:4]], rel=1e-5)
    assert [[h.id for h in hs] for hs in searcher.batch_search(pair, k=2, mode=SetScoring(score_mode))] == [
        [h.id for h in searcher.search(t, k=2, mode=f"sets:{score_mode}")] for t in pair]


def test_the_searcher_refuses_query_sets_on_single_vector_indexes_and_modes_on_sets(vocab):
    from lsr import EmbeddedIndex, SparseSearcher

    searcher, encoder = searcher_over_sets(EmbeddedSetIndex(vocab_size=len(vocab)), vocab)
    with pytest.raises(ValueError, match="SetScoring"):
        searcher.search("a dog", mode=Rerank("dense"))
    with pytest.raises(ValueError, match="empty"):
        searcher.search([])
    from lsr.backends.validate import MAX_QUERY_TERMS, prepare_query_set

    phrasings = [SparseVector.from_dict({t: 1.0 + t / 1e4 for t in range(1, 1001)})] * 3
    assert [q.nnz for q in prepare_query_set(phrasings, len(vocab))] == [MAX_QUERY_TERMS // 3 - 1] * 3
    assert prepare_query_set(phrasings, len(vocab))[0].ids.min() == 1000 - MAX_QUERY_TERMS // 3 + 2  # the heaviest
    assert prepare_query_set(phrasings[:1], len(vocab))[0].nnz == 1000  # under the budget: all terms kept
    plain = SparseSearcher(EmbeddedIndex(vocab_size=len(vocab)), encoder)
    with pytest.raises(ValueError, match="needs a set index"):
        plain.search(["a dog", "a puppy"])


@pytest.mark.opensearch
def test_the_searcher_over_opensearch_sets_matches_the_embedded_one(opensearch_url, vocab):
    from uuid import uuid4

    from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND
    from lsr.backends.opensearch.sets import OpenSearchSetIndex

    embedded, _ = searcher_over_sets(EmbeddedSetIndex(vocab_size=len(vocab)), vocab)
    node = OpenSearchSetIndex(opensearch_url, index=f"lsr-test-sets-{uuid4().hex[:8]}", vocab=vocab)
    try:
        remote, _ = searcher_over_sets(node, vocab)
        for mode in ("max", "sum", "avg"):
            for query in ("a dog runs on the grass", ["two men play guitars", "a red car on a street"]):
                assert_same_ranking(embedded.search(query, k=4, mode=SetScoring(mode)),
                                    remote.search(query, k=4, mode=SetScoring(mode)), rel=2 * RELATIVE_SCORE_BOUND)
    finally:
        node.drop()
