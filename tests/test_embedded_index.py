"""EmbeddedIndex against brute-force `SparseBatch.dot` on random sparse documents."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lsr.backends.embedded import EmbeddedIndex
from lsr.sparse import VOCAB_SIZE, SparseBatch, SparseVector


def random_batch(rng: np.random.Generator, n: int, nnz: int = 30, vocab: int = VOCAB_SIZE, head: int = 300) -> SparseBatch:
    """Random docs; half of each doc's terms come from a small head so that docs share terms."""
    rows, cols = [], []
    for i in range(n):
        terms = np.union1d(rng.choice(head, size=nnz // 2, replace=False), rng.choice(vocab, size=nnz - nnz // 2, replace=False))
        rows.append(np.full(terms.size, i))
        cols.append(terms)
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    data = rng.uniform(0.05, 2.0, size=cols_a.size).astype(np.float32)
    return SparseBatch(sp.csr_matrix((data, (rows_a, cols_a)), shape=(n, vocab)))


def brute_force(queries: SparseBatch, docs: SparseBatch, ids: list[str], k: int) -> list[list[tuple[str, float]]]:
    """Top-k (id, score) by exact dot product, score > 0, ties by document order."""
    scores = queries.dot(docs)
    out = []
    for row in scores:
        order = np.lexsort((np.arange(row.size), -row))
        out.append([(ids[j], float(row[j])) for j in order[:k] if row[j] > 0])
    return out


def assert_hits_equal(hits, expected) -> None:
    assert [h.id for h in hits] == [e[0] for e in expected]
    np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected], rtol=1e-6)


def state(index: EmbeddedIndex, queries: SparseBatch, k: int = 10) -> tuple:
    """Everything observable about an index, for unchanged-after-error checks."""
    results = [[(h.id, h.score, h.metadata) for h in hits] for hits in index.search_batch(queries, k=k)]
    return index.count(), results


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    docs = random_batch(rng, 400)
    queries = random_batch(rng, 25)
    ids = [f"doc-{i}" for i in range(len(docs))]
    return ids, docs, queries


def build(ids, docs, batch: int = 128) -> EmbeddedIndex:
    index = EmbeddedIndex()
    for lo in range(0, len(ids), batch):
        hi = min(len(ids), lo + batch)
        meta = [{"n": i, "tag": "even" if i % 2 == 0 else "odd"} for i in range(lo, hi)]
        report = index.index(ids[lo:hi], docs.rows(slice(lo, hi)), meta)
        assert report.indexed == hi - lo and not report.failed
    return index


def test_search_matches_brute_force(corpus):
    ids, docs, queries = corpus
    index = build(ids, docs)
    assert index.count() == len(index) == len(ids)
    expected = brute_force(queries, docs, ids, k=10)
    assert all(len(e) == 10 for e in expected)
    for q, exp in zip(queries, expected):
        hits = index.search(q, k=10)
        assert_hits_equal(hits, exp)
        assert all(h.contributions is None for h in hits)
        n = int(hits[0].id.split("-")[1])
        assert hits[0].metadata == {"n": n, "tag": "even" if n % 2 == 0 else "odd"}


def test_larger_corpus_with_deletes_matches_brute_force():
    rng = np.random.default_rng(11)
    docs = random_batch(rng, 3000, head=2000)
    queries = random_batch(rng, 40, nnz=8, head=2000)
    ids = [f"d{i}" for i in range(len(docs))]
    index = build(ids, docs, batch=1000)
    gone = set(rng.choice(len(ids), size=300, replace=False).tolist())
    assert index.delete([ids[j] for j in gone]) == 300
    keep = [j for j in range(len(ids)) if j not in gone]
    for k in (1, 10, 100):
        expected = brute_force(queries, docs.rows(keep), [ids[j] for j in keep], k=k)
        batch = index.search_batch(queries, k=k)
        for q, exp, hits in zip(queries, expected, batch):
            assert_hits_equal(index.search(q, k=k), exp)
            assert_hits_equal(hits, exp)


def test_large_k_returns_only_positive_scores(corpus):
    ids, docs, queries = corpus
    index = build(ids, docs)
    q = SparseVector(np.array([VOCAB_SIZE - 1], dtype=np.int32), np.array([1.0], dtype=np.float32))
    exp = brute_force(SparseBatch.from_vectors([q]), docs, ids, k=len(ids))[0]
    assert_hits_equal(index.search(q, k=len(ids)), exp)
    full = index.search(queries[0], k=10_000)
    exp_full = brute_force(queries.rows([0]), docs, ids, k=10_000)[0]
    assert 0 < len(full) < len(ids)  # docs that share no term are not hits
    assert_hits_equal(full, exp_full)


def test_search_batch_equals_search(corpus):
    ids, docs, queries = corpus
    index = build(ids, docs)
    index.batch_memory_bytes = 8 * len(ids) * 3  # forces chunks of one or two queries
    batch = index.search_batch(queries, k=7, explain=True)
    assert len(batch) == len(queries)
    for q, hits in zip(queries, batch):
        single = index.search(q, k=7, explain=True)
        assert [(h.id, h.score, h.contributions) for h in hits] == [(h.id, h.score, h.contributions) for h in single]


def test_explain_contributions_sum_to_score(corpus):
    ids, docs, queries = corpus
    index = build(ids, docs)
    doc_vectors = {i: docs[j] for j, i in enumerate(ids)}
    for q in queries:
        for hit in index.search(q, k=5, explain=True):
            assert hit.contributions
            assert sum(hit.contributions.values()) == pytest.approx(hit.score, rel=1e-5)
            d = doc_vectors[hit.id]
            shared = set(np.intersect1d(q.ids, d.ids).tolist())
            assert set(hit.contributions) == shared
            qd, dd = q.to_dict(), d.to_dict()
            for t, c in hit.contributions.items():
                assert c == pytest.approx(qd[t] * dd[t], rel=1e-6)


def test_reindex_replaces(corpus):
    ids, docs, queries = corpus
    index = build(ids, docs)
    q = queries[0]
    target = index.search(q, k=1)[0].id
    # Give the top doc exactly the query's terms with big weights: it must stay a single top hit.
    boosted = SparseVector(q.ids, np.full(q.nnz, 10.0, dtype=np.float32))
    index.index([target], SparseBatch.from_vectors([boosted]), [{"replaced": True}])
    assert index.count() == len(ids)
    hits = index.search(q, k=len(ids))
    assert [h.id for h in hits].count(target) == 1
    assert hits[0].id == target and hits[0].metadata == {"replaced": True}
    assert hits[0].score == pytest.approx(q.dot(boosted), rel=1e-6)
    got = index.get(target)
    np.testing.assert_array_equal(got.ids, boosted.ids)
    np.testing.assert_array_equal(got.weights, boosted.weights)
    # Replacing it back with a vector sharing no query term removes it from the results.
    far = SparseVector(np.array([VOCAB_SIZE - 2], dtype=np.int32), np.array([1.0], dtype=np.float32))
    index.index([target], SparseBatch.from_vectors([far]))
    index.compact()
    assert target not in {h.id for h in index.search(q, k=len(ids))}
    assert index.count() == len(ids)


def test_delete(corpus):
    ids, docs, queries = corpus
    index = build(ids, docs)
    q = queries[1]
    top = [h.id for h in index.search(q, k=3)]
    assert index.delete([top[0], "no-such-doc"]) == 1
    assert index.delete([top[0]]) == 0
    assert index.count() == len(ids) - 1 and top[0] not in index
    with pytest.raises(KeyError):
        index.get(top[0])
    keep = [j for j, i in enumerate(ids) if i != top[0]]
    exp = brute_force(queries.rows([1]), docs.rows(keep), [ids[j] for j in keep], k=10)[0]
    assert_hits_equal(index.search(q, k=10), exp)
    index.compact()
    assert_hits_equal(index.search(q, k=10), exp)
    assert index.search_batch(queries.rows([1]), k=10)[0][0].id == top[1]


def test_get_roundtrip(corpus):
    ids, docs, _ = corpus
    index = EmbeddedIndex()
    index.index(ids[:50], docs.rows(slice(0, 50)))
    v = index.get(ids[3])  # still pending
    np.testing.assert_array_equal(v.ids, docs[3].ids)
    index.compact()
    index.index(ids[50:60], docs.rows(slice(50, 60)))
    for j in (3, 49, 55):
        v = index.get(ids[j])
        np.testing.assert_array_equal(v.ids, docs[j].ids)
        np.testing.assert_array_equal(v.weights, docs[j].weights)
    with pytest.raises(KeyError):
        index.get("missing")


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_roundtrip(corpus, tmp_path, mmap):
    ids, docs, queries = corpus
    index = build(ids[:300], docs.rows(slice(0, 300)))
    index.delete([ids[0], ids[5]])
    before = index.search_batch(queries, k=10, explain=True)
    index.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "index.json").is_file()
    loaded = EmbeddedIndex.load(tmp_path / "idx", mmap=mmap)
    if mmap:
        assert isinstance(loaded._docs, np.memmap)
    assert loaded.count() == index.count() == 298
    after = loaded.search_batch(queries, k=10, explain=True)
    key = lambda res: [[(h.id, h.score, h.metadata, h.contributions) for h in hits] for hits in res]  # noqa: E731
    assert key(after) == key(before)
    assert loaded.memory_bytes() > 0
    # The loaded index keeps taking writes, and saving over its own mmap'd files is safe.
    loaded.index(ids[300:], docs.rows(slice(300, len(ids))), [{"late": True}] * (len(ids) - 300))
    loaded.delete([ids[10]])
    keep = [j for j in range(len(ids)) if j not in (0, 5, 10)]
    exp = brute_force(queries, docs.rows(keep), [ids[j] for j in keep], k=10)
    for q, e in zip(queries, exp):
        assert_hits_equal(loaded.search(q, k=10), e)
    loaded.save(tmp_path / "idx")
    again = EmbeddedIndex.load(tmp_path / "idx")
    assert again.count() == len(keep)
    for q, e in zip(queries, exp):
        assert_hits_equal(again.search(q, k=10), e)
    assert again.metadata(ids[-1]) == {"late": True}


def test_bad_input_leaves_index_unchanged(corpus):
    ids, docs, queries = corpus
    index = build(ids[:100], docs.rows(slice(0, 100)))
    before = state(index, queries)
    new = docs.rows(slice(100, 103))
    neg = new.csr.copy()
    neg.data[neg.indptr[1]] = -0.5  # first weight of the second doc
    with pytest.raises(ValueError, match="doc-101"):
        index.index(["doc-100", "doc-101", "doc-102"], SparseBatch(neg))
    with pytest.raises(ValueError, match="Duplicate"):
        index.index(["doc-1", "x", "doc-1"], new)
    with pytest.raises(ValueError, match="3 vectors"):
        index.index(["doc-1", "x"], new)
    with pytest.raises(ValueError):
        index.index(["doc-1", "", "y"], new)
    with pytest.raises(ValueError):
        index.index("abc", new)
    with pytest.raises(ValueError, match="metadata"):
        index.index(["doc-1", "x", "y"], new, [{}])
    with pytest.raises(ValueError, match="JSON"):
        index.index(["doc-1", "x", "y"], new, [{"a": object()}, None, None])
    with pytest.raises(ValueError):
        index.index(["a"], SparseBatch(sp.csr_matrix((1, 100), dtype=np.float32), vocab_size=100))
    with pytest.raises(ValueError):
        index.search(queries[0], k=0)
    assert state(index, queries) == before
    np.testing.assert_array_equal(index.get("doc-1").ids, docs[1].ids)


def test_empty_index():
    index = EmbeddedIndex()
    q = SparseVector(np.array([1, 2], dtype=np.int32), np.array([0.5, 1.0], dtype=np.float32))
    assert index.search(q) == []
    assert index.search_batch(SparseBatch.from_vectors([q, q])) == [[], []]
    assert index.count() == 0 and len(index) == 0
    assert index.delete(["x"]) == 0
    index.index(["a"], SparseBatch.from_vectors([q]))
    index.delete(["a"])
    assert index.search(q) == []
    index.compact()
    assert index.search(q) == [] and index.count() == 0
    assert index.search(SparseVector(np.zeros(0, np.int32), np.zeros(0, np.float32))) == []


def test_memory_is_postings_not_dense(corpus):
    ids, docs, _ = corpus
    index = build(ids, docs)
    index.compact()
    assert index._docs.dtype == np.int32 and index._vals.dtype == np.float32 and index._offsets.dtype == np.int64
    assert not index._pending  # no forward CSR kept after the build
    postings = docs.csr.nnz * 8 + (VOCAB_SIZE + 1) * 8
    assert postings <= index.memory_bytes() < postings + 200 * len(ids) + 10_000


def test_ties_broken_by_document_order():
    v = SparseVector(np.array([5, 9], dtype=np.int32), np.array([1.0, 2.0], dtype=np.float32))
    index = EmbeddedIndex()
    index.index(["c", "a", "b"], SparseBatch.from_vectors([v, v, v]))
    index.index(["d"], SparseBatch.from_vectors([v]))
    assert [h.id for h in index.search(v, k=3)] == ["c", "a", "b"]
    index.index(["c"], SparseBatch.from_vectors([v]))  # a replaced doc moves to the end
    assert [h.id for h in index.search(v, k=4)] == ["a", "b", "d", "c"]
    assert [h.id for h in index.search_batch(SparseBatch.from_vectors([v]), k=2)[0]] == ["a", "b"]
