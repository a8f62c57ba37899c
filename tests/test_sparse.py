import json

import numpy as np
import pytest
import scipy.sparse as sp

from lsr.exchange import read_jsonl, write_jsonl
from lsr.sparse import VOCAB_SIZE, SparseBatch, SparseVector, flops


def random_batch(n=20, nnz=30, seed=0) -> SparseBatch:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = np.concatenate([rng.choice(VOCAB_SIZE, nnz, replace=False) for _ in range(n)])
    vals = rng.uniform(0.1, 3.0, size=n * nnz).astype(np.float32)
    return SparseBatch(sp.csr_matrix((vals, (rows, cols)), shape=(n, VOCAB_SIZE)))


def test_vector_sorts_drops_zeros_and_rejects_bad_input():
    v = SparseVector(np.array([5, 2, 9]), np.array([1.0, 0.0, 2.0]))
    assert v.ids.tolist() == [5, 9] and v.weights.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="NaN or inf"):
        SparseVector(np.array([1]), np.array([np.nan]))
    with pytest.raises(ValueError, match="duplicate"):
        SparseVector(np.array([1, 1]), np.array([1.0, 2.0]))


def test_batch_from_dense_round_trip_and_dot():
    rng = np.random.default_rng(1)
    dense = np.maximum(rng.normal(size=(4, VOCAB_SIZE)).astype(np.float32) - 2.5, 0)
    batch = SparseBatch.from_dense(dense)
    np.testing.assert_array_equal(batch.csr.toarray(), dense)
    np.testing.assert_allclose(batch.dot(batch), dense @ dense.T, rtol=1e-5)
    assert batch[1].dot(batch[2]) == pytest.approx(float(dense[1] @ dense[2]), rel=1e-5)
    with pytest.raises(ValueError, match="NaN or inf"):
        SparseBatch.from_dense(np.full((1, VOCAB_SIZE), np.inf, dtype=np.float32))


def test_dense_path_of_dot_equals_sparse_path():
    rng = np.random.default_rng(2)
    dense = np.abs(rng.normal(size=(6, VOCAB_SIZE)).astype(np.float32))  # fully dense rows take the dense path
    batch = SparseBatch.from_dense(dense)
    np.testing.assert_allclose(batch.dot(batch), dense @ dense.T, rtol=1e-4)


def test_sparsity_and_flops():
    batch = random_batch(n=10, nnz=30)
    stats = batch.sparsity()
    assert stats["mean_nnz"] == 30 and stats["p50_nnz"] == 30 and stats["max_nnz"] == 30
    q = SparseBatch.from_vectors([SparseVector(np.array([1, 2]), np.array([1.0, 1.0]))])
    d = SparseBatch.from_vectors([SparseVector(np.array([2, 3]), np.array([1.0, 1.0])),
                                  SparseVector(np.array([1, 2, 3]), np.array([1.0, 1.0, 1.0]))])
    assert flops(q, d) == pytest.approx((1 + 2) / 2)  # co-activated terms averaged over the 2 pairs


def test_dict_conversions_and_decode(vocab):
    v = SparseVector.from_dict({"dog": 2.0, "ball": 1.5, "the": 0.1}, vocab)
    assert v.to_dict(vocab) == pytest.approx({"dog": 2.0, "ball": 1.5, "the": 0.1})
    assert [t for t, _ in v.decode(vocab, top_k=2)] == ["dog", "ball"]
    assert SparseVector.from_dict(v.to_dict()).ids.tolist() == v.ids.tolist()
    with pytest.raises(KeyError, match="not in the vocabulary"):
        SparseVector.from_dict({"notatoken!!": 1.0}, vocab)


def test_vocabulary_is_bert_base_uncased_with_dotted_tokens(vocab):
    assert len(vocab) == VOCAB_SIZE
    assert vocab.token(vocab.id("dog")) == "dog"
    dotted = [t for t in vocab.tokens if "." in t]
    assert len(dotted) > 1  # tokens that are not safe field names exist; nothing may assume otherwise
    ids = vocab.token_ids(["A dog, a DOG and a frisbee."])[0]
    expected = {vocab.id(t) for t in ("a", "dog", ",", "and", "fr", "##is", "##bee", ".")}
    assert ids.tolist() == sorted(expected)  # unique, sorted, lower-cased, WordPiece-split, no [CLS]/[SEP]


@pytest.mark.parametrize("naming,quantize", [("wordpiece", None), ("id", None), ("wordpiece", 100)])
def test_jsonl_round_trip_full_vocabulary(tmp_path, vocab, naming, quantize):
    # one vector per 1,000 tokens covering the whole vocabulary, dotted tokens included
    ids = np.arange(VOCAB_SIZE, dtype=np.int32)
    weights = np.linspace(0.05, 5.0, VOCAB_SIZE).astype(np.float32)
    chunks = [SparseVector(ids[i:i + 1000], weights[i:i + 1000]) for i in range(0, VOCAB_SIZE, 1000)]
    batch = SparseBatch.from_vectors(chunks)
    doc_ids = [f"doc{i}" for i in range(len(batch))]
    path = tmp_path / "vectors.jsonl"
    write_jsonl(path, doc_ids, batch, vocab, contents=[""] * len(batch), naming=naming, quantize=quantize)
    first = json.loads(path.read_text().splitlines()[0])
    assert set(first) == {"id", "contents", "vector"}
    meta = json.loads((tmp_path / "vectors.jsonl.meta.json").read_text())
    assert meta["token_naming"] == naming
    got_ids, _, got = read_jsonl(path, vocab)
    assert got_ids == doc_ids
    np.testing.assert_array_equal(got.csr.indices, batch.csr.indices)
    tol = 0.5 / quantize if quantize else 1e-6
    np.testing.assert_allclose(got.csr.data, batch.csr.data, atol=tol)
