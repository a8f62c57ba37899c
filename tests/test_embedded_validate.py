"""The batch validation (`accept_documents`, array operations) gives the outcome of the per-document rules
(`accept_documents_per_document`) on random good and bad input: the same accepted documents, the same
reasons in `failed`, the same whole-call errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from lsr.backends.validate import MIN_WEIGHT, accept_documents, accept_documents_per_document
from lsr.errors import InvalidInputError
from lsr.sparse import SparseBatch, SparseVector

VOCAB = 50


def _outcome(fn, ids, vectors, metadata):
    try:
        acc = fn(list(ids), vectors, metadata, VOCAB)
    except InvalidInputError as exc:
        return ("error", type(exc).__name__, str(exc))
    csr = acc.vectors.csr
    return (acc.ids, csr.indptr.tolist(), csr.indices.tolist(), csr.data.tolist(), acc.metadata, acc.failed,
            list(acc.failed))


def _random_id(rng: np.random.Generator, i: int):
    """A good id or one of each kind of bad one (distinct per i, so the call itself stays valid)."""
    kind = int(rng.integers(0, 12))
    if kind == 0 and i == 0:
        return ""
    return {1: i, 2: float(i) + 0.5, 3: "x" * 513 + str(i), 4: "é" * 257 + str(i), 5: f"bad\ud800{i}",
            6: "é" * 200 + str(i), 7: "y" * (512 - len(str(i))) + str(i)}.get(kind, f"doc-{i}")


def _random_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    w = rng.lognormal(0, 1, n)
    for j in range(n):
        roll = rng.random()
        if roll < 0.04:
            w[j] = -w[j]
        elif roll < 0.06:
            w[j] = math.nan
        elif roll < 0.08:
            w[j] = math.inf
        elif roll < 0.14:
            w[j] = 1e-39  # sub-normal in float32: dropped
        elif roll < 0.18:
            w[j] = 0.0
    return w


def _random_vector(rng: np.random.Generator):
    kind = rng.integers(0, 10)
    n = int(rng.integers(0, 6))
    tokens = rng.choice(VOCAB + 5, size=n, replace=False) - (2 if rng.random() < 0.1 else 0)
    weights = _random_weights(rng, n)
    if kind == 0:
        return "not a vector"
    if kind == 1:
        return {"a": 1.0}
    if kind <= 5:
        return {int(t): float(w) for t, w in zip(tokens, weights)}
    finite = np.where(np.isfinite(weights), weights, 1.0)
    return SparseVector(tokens.astype(np.int32), finite.astype(np.float32))


def _random_meta(rng: np.random.Generator, i: int):
    kind = rng.integers(0, 8)
    return {0: None, 1: [1, 2], 2: {"x": {1, 2}}, 3: {"x": math.nan}, 4: "text"}.get(int(kind), {"i": i})


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_rules_match_the_per_document_rules_on_random_bad_input(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    ids = [_random_id(rng, i) for i in range(n)]
    if len({i if isinstance(i, str) else repr(i) for i in ids}) < n:
        ids = [i if isinstance(i, str) and i else f"doc-{j}" for j, i in enumerate(ids)]
    vectors = [_random_vector(rng) for _ in range(n)]
    metadata = [_random_meta(rng, i) for i in range(n)] if seed % 3 else None
    assert _outcome(accept_documents, ids, vectors, metadata) == \
        _outcome(accept_documents_per_document, ids, vectors, metadata)


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_rules_match_on_sparse_batches_with_sub_normal_and_out_of_range_rows(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 60))
    dense = rng.lognormal(0, 1, (n, VOCAB)).astype(np.float32) * (rng.random((n, VOCAB)) < 0.1)
    dense[rng.random((n, VOCAB)) < 0.05] = 1e-39  # sub-normal: dropped, and a row of only these fails
    dense[rng.random(n) < 0.1] = 0
    batch = SparseBatch(sp.csr_matrix(dense), VOCAB)
    ids = [_random_id(rng, i) if rng.random() < 0.3 else f"doc-{i}" for i in range(n)]
    if len({i if isinstance(i, str) else repr(i) for i in ids}) < n:
        ids = [f"doc-{i}" for i in range(n)]
    metadata = [_random_meta(rng, i) for i in range(n)] if seed % 2 else None
    assert _outcome(accept_documents, ids, batch, metadata) == \
        _outcome(accept_documents_per_document, ids, batch, metadata)


def test_a_clean_batch_passes_through_without_a_copy():
    batch = SparseBatch(sp.csr_matrix(np.eye(3, VOCAB, dtype=np.float32)), VOCAB)
    acc = accept_documents(["a", "b", "c"], batch, None, VOCAB)
    assert acc.vectors is batch and acc.failed == {} and acc.metadata == [None] * 3


@pytest.mark.parametrize("vectors, message", [
    ([{1: 1e39}], "NaN or inf"),  # finite in float64, inf once stored as float32
    ([{1: 1.0, 1.0: 2.0}], None),  # one key: a mapping cannot repeat it
])
def test_whole_call_errors_are_the_same(vectors, message):
    a = _outcome(accept_documents, ["a"], vectors, None)
    b = _outcome(accept_documents_per_document, ["a"], vectors, None)
    assert a == b
    if message:
        assert message in a[2]


def test_sub_normal_weights_are_dropped_and_the_rest_kept():
    acc = accept_documents(["a", "b"], [{1: 1e-39, 2: 0.5}, {3: 1e-39}], None, VOCAB)
    assert acc.ids == ["a"] and acc.vectors.csr.indices.tolist() == [2]
    assert acc.failed == {"b": "the vector has no positive weight, so it could never be retrieved"}
    assert float(MIN_WEIGHT) > 1e-39
