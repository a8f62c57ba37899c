"""Query pruning rules, OpenSearch feature naming and query fitting (no server needed)."""

from __future__ import annotations

import numpy as np
import pytest

from lsr.backends.opensearch.features import FeatureNaming, escape_token, unescape_token
from lsr.backends.opensearch.query import QueryRules, build_query
from lsr.prune import cap_terms, prune
from lsr.sparse import SparseVector

Q = SparseVector([5, 9, 2, 7], [1.0, 4.0, 2.0, 3.0])


def test_prune_rules_follow_opensearch_semantics():
    assert sorted(prune(Q, "top_k", 2).ids) == [7, 9]
    assert sorted(prune(Q, "max_ratio", 0.5).ids) == [2, 7, 9]  # >= 0.5 * 4
    # total 10: 4 (0.4) + 3 (0.7) reaches 0.7 -> two tokens; 0.75 needs the third
    assert sorted(prune(Q, "alpha_mass", 0.7).ids) == [7, 9]
    assert sorted(prune(Q, "alpha_mass", 0.75).ids) == [2, 7, 9]
    assert sorted(prune(Q, "abs_value", 2.0).ids) == [2, 7, 9]
    kept = prune(Q, "top_k", 3)
    assert kept.to_dict() == {9: 4.0, 7: 3.0, 2: 2.0}  # weights unchanged


@pytest.mark.parametrize("rule,value", [("top_k", 0), ("top_k", 1.5), ("max_ratio", 1.5), ("alpha_mass", -0.1),
                                        ("abs_value", -1), ("bogus", 1)])
def test_prune_rejects_bad_parameters(rule, value):
    with pytest.raises(ValueError):
        prune(Q, rule, value)


def test_cap_terms_keeps_the_heaviest():
    rng = np.random.default_rng(0)
    q = SparseVector(np.arange(3000), rng.random(3000).astype(np.float32) + 0.01)
    capped = cap_terms(q, 1024)
    assert capped.nnz == 1024
    assert capped.weights.min() >= np.sort(q.weights)[-1024]


def test_escaping_is_reversible_and_dot_free():
    for token in ["cat", "##ing", ".", "...", "##.", "%", "##%", "%2E", "%25", "a.%b"]:
        name = escape_token(token)
        assert "." not in name
        assert unescape_token(name) == token


def test_full_vocabulary_naming_round_trip(vocab):
    naming = FeatureNaming("wordpiece", vocab)
    names = [naming.name(i) for i in range(len(vocab))]
    assert len(set(names)) == len(vocab) == 30522
    assert all("." not in n for n in names)
    assert [naming.token_id(n) for n in names] == list(range(len(vocab)))
    v = SparseVector(np.arange(len(vocab)), np.linspace(0.1, 2.0, len(vocab)))
    back = naming.from_features(naming.to_features(v))
    np.testing.assert_array_equal(back.ids, v.ids)
    np.testing.assert_array_equal(back.weights, v.weights)


def test_id_naming_needs_no_vocabulary():
    naming = FeatureNaming("id")
    assert naming.to_features(SparseVector([3, 1012], [0.5, 1.5])) == {"3": 0.5, "1012": 1.5}
    assert naming.token_id("1012") == 1012


def test_query_rules_scale_into_weight_range_and_cap_clauses():
    rng = np.random.default_rng(1)
    q = SparseVector(np.arange(2000), (rng.random(2000) * 100 + 1).astype(np.float32))
    sent, scale = QueryRules().apply(q)
    assert sent.nnz == 1024
    assert 0 < sent.weights.min() and sent.weights.max() <= 64.0
    assert scale == pytest.approx(64.0 / q.weights.max())
    # scaling, not clipping: the order of weights is kept
    kept = cap_terms(q, 1024)
    np.testing.assert_allclose(sent.weights, kept.weights * scale, rtol=1e-6)
    small, s = QueryRules().apply(Q)
    assert s == 1.0 and small.to_dict() == Q.to_dict()


def test_build_query_shapes():
    naming = FeatureNaming("id")
    ns = build_query(Q, naming, "sparse")
    assert ns == {"neural_sparse": {"sparse": {"query_tokens": {"2": 2.0, "5": 1.0, "7": 3.0, "9": 4.0}}}}
    ann = build_query(Q, naming, "sparse", method_parameters={"k": 5, "top_n": 3, "heap_factor": 1.0})
    assert ann["neural_sparse"]["sparse"]["method_parameters"]["top_n"] == 3
    rf = build_query(Q, naming, "sparse", query_type="rank_feature")
    assert {c["rank_feature"]["field"] for c in rf["bool"]["should"]} == {"sparse.2", "sparse.5", "sparse.7", "sparse.9"}
    with pytest.raises(ValueError):
        build_query(Q, naming, "sparse", query_type="match")
