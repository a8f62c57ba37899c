"""EmbeddedIndex against brute-force `SparseBatch.dot` on random sparse documents."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from lsr.backends import embedded_ids
from lsr.backends.embedded import EmbeddedIndex
from lsr.backends.embedded_ids import IdTable
from lsr.backends.embedded_store import StoredPostings, write_postings
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
    """Malformed calls change nothing; bad documents fail one by one (`tests/test_backend_contract.py`)."""
    ids, docs, queries = corpus
    index = build(ids[:100], docs.rows(slice(0, 100)))
    before = state(index, queries)
    new = docs.rows(slice(100, 103))
    with pytest.raises(ValueError, match="twice"):
        index.index(["doc-1", "x", "doc-1"], new)
    with pytest.raises(ValueError, match="3 vectors"):
        index.index(["doc-1", "x"], new)
    with pytest.raises(ValueError):
        index.index("abc", new)
    with pytest.raises(ValueError, match="metadata"):
        index.index(["doc-1", "x", "y"], new, [{}])
    with pytest.raises(ValueError):
        index.index(["a"], SparseBatch(sp.csr_matrix((1, 100), dtype=np.float32), vocab_size=100))
    with pytest.raises(ValueError):
        index.search(queries[0], k=0)
    assert state(index, queries) == before
    np.testing.assert_array_equal(index.get("doc-1").ids, docs[1].ids)

    neg = new.csr.copy()
    neg.data[neg.indptr[1]] = -0.5  # first weight of the second doc
    report = index.index(["doc-1", "bad-\udc80", "y"], SparseBatch(neg), [{"a": object()}, None, None])
    assert report.indexed == 1 and set(report.failed) == {"doc-1", "bad-\udc80"}
    assert "JSON" in report.failed["doc-1"] and "UTF-8" in report.failed["bad-\udc80"]
    np.testing.assert_array_equal(index.get("doc-1").ids, docs[1].ids)  # the failed replacement kept the old one
    report = index.index(["doc-100", "doc-101"], SparseBatch(neg[:2]))
    assert report.indexed == 1 and "negative" in report.failed["doc-101"] and "doc-101" not in index


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


# ----------------------------------------------------------------------------- IdTable


def check_table(table: IdTable, live: dict[str, int]) -> None:
    """`table` finds exactly the ids in `live` at their rows, one at a time and vectorised."""
    assert len(table) == len(live)
    ids = list(live)
    expected = np.array([live[i] for i in ids], dtype=np.int64)
    np.testing.assert_array_equal(table.rows(ids), expected)
    assert [table.row(i) for i in ids] == expected.tolist()
    assert all(i in table for i in ids)
    assert table.ids_of(expected.tolist()) == ids
    assert table.row("missing") == -1 and "missing" not in table and 5 not in table
    np.testing.assert_array_equal(table.rows(["missing", *ids[:1]]), [-1, *expected[:1]])


@pytest.fixture
def small_folds(monkeypatch):
    """Fold after a few pending ids so that small tests cross many folds."""
    monkeypatch.setattr(embedded_ids, "_FOLD_MIN", 8)


def test_id_table_many_small_appends_fold_amortised(small_folds, monkeypatch):
    folds = []
    fold = IdTable._fold
    monkeypatch.setattr(IdTable, "_fold", lambda self: (folds.append(len(self._pending_ids)), fold(self)))
    rng = np.random.default_rng(3)
    table, live = IdTable(), {}
    while len(live) < 3000:
        batch = [f"id-{len(live) + j}" for j in range(int(rng.integers(1, 6)))]
        np.testing.assert_array_equal(table.add(batch), -1)
        live.update((i, len(live)) for i in batch)
        assert len(table._pending_ids) <= max(8, table._folded_rows // 8) + 5
    check_table(table, live)
    assert table._hashes.size > 2000  # most ids were folded into the sorted lookup
    assert len([f for f in folds if f]) < 80  # geometric folds, not one per add
    table.compact()
    assert not table._pending_ids and table.n_rows == len(live)
    check_table(table, live)


@pytest.mark.parametrize("fold_first", [False, True])
def test_id_table_replace_and_discard(fold_first):
    table = IdTable()
    table.add(["a", "b", "c", "d"])
    if fold_first:
        table.compact()
    np.testing.assert_array_equal(table.add(["b", "e"]), [1, -1])  # b replaced: row 1 dead
    assert table.id_of(1) == "b" and table.row("b") == 4
    np.testing.assert_array_equal(table.discard(["a", "zz", "a", "e"]), [0, -1, 0, 5])
    assert table.id_of(0) == "a" and "a" not in table and "e" not in table
    check_table(table, {"b": 4, "c": 2, "d": 3})
    np.testing.assert_array_equal(table.add(["a"]), [-1])  # a deleted id comes back at a new row
    check_table(table, {"b": 4, "c": 2, "d": 3, "a": 6})
    table.compact()  # folds the dead pending rows too: they stay readable, not findable
    assert table.ids_of(range(7)) == ["a", "b", "c", "d", "b", "e", "a"]
    check_table(table, {"b": 4, "c": 2, "d": 3, "a": 6})
    np.testing.assert_array_equal(table.discard(["c", "c"]), [2, 2])
    assert len(table) == 3 and table.discard(["c"])[0] == -1
    with pytest.raises(IndexError):
        table.id_of(7)


def test_id_table_compaction_remaps_rows(small_folds):
    ids = [f"doc-{i}" for i in range(100)]
    table = IdTable(ids[:60])
    table.add(ids[60:])
    table.add(["doc-10", "doc-70"])  # rows 100, 101 replace rows 10, 70
    table.discard(["doc-3", "doc-99"])
    dead = {3, 10, 70, 99}
    keep = np.array([r not in dead for r in range(table.n_rows)])
    expected_order = [table.id_of(r) for r in np.flatnonzero(keep)]
    table.compact(keep)
    assert table.n_rows == len(expected_order) == 98 and table.ids_of(range(98)) == expected_order
    check_table(table, {doc_id: r for r, doc_id in enumerate(expected_order)})
    assert table._n_discarded == 0 and table._hashes.size == 98
    # Dropping a live row forgets its id; a wrong-sized mask is refused.
    keep = np.ones(98, dtype=bool)
    keep[0] = False
    table.compact(keep)
    assert expected_order[0] not in table and table.row(expected_order[1]) == 0
    with pytest.raises(ValueError, match="rows"):
        table.compact(np.ones(3, dtype=bool))


@pytest.mark.parametrize("forced_hash", [lambda s: 7, lambda s: len(s) % 3], ids=["constant", "three-buckets"])
def test_id_table_hash_collisions(small_folds, monkeypatch, forced_hash):
    monkeypatch.setattr(embedded_ids, "_hash", forced_hash)
    ids = [f"k{i}" for i in range(150)]
    table = IdTable(ids[:50])
    for lo in range(50, 150, 7):
        table.add(ids[lo : lo + 7])
    table.add(["k5", "k120"])  # replace one folded and one (possibly) pending id
    np.testing.assert_array_equal(table.discard(["k6", "k140", "nope"]), [6, 140, -1])
    live = {i: r for r, i in enumerate(ids) if i not in {"k5", "k120", "k6", "k140"}}
    live.update({"k5": 150, "k120": 151})
    check_table(table, live)
    table.compact(np.array([r not in {5, 6, 120, 140} for r in range(table.n_rows)]))
    order = [i for i in ids if i not in {"k5", "k120", "k6", "k140"}] + ["k5", "k120"]
    check_table(table, {i: r for r, i in enumerate(order)})


def test_embedded_index_with_colliding_hashes(corpus, small_folds, monkeypatch, tmp_path):
    monkeypatch.setattr(embedded_ids, "_hash", lambda s: 42)
    ids, docs, queries = corpus
    index = build(ids[:200], docs.rows(slice(0, 200)), batch=50)
    index.delete([ids[1], ids[7]])
    index.index([ids[2]], docs.rows([2]), [{"again": True}])
    keep = [j for j in range(200) if j not in (1, 7)]
    exp = brute_force(queries, docs.rows(keep), [ids[j] for j in keep], k=10)
    for q, e in zip(queries, exp):
        assert_hits_equal(index.search(q, k=10), e)
    assert index.metadata(ids[2]) == {"again": True} and ids[1] not in index and index.count() == 198
    index.save(tmp_path / "idx")
    loaded = EmbeddedIndex.load(tmp_path / "idx")
    assert loaded.metadata(ids[2]) == {"again": True} and loaded.count() == 198
    for q, e in zip(queries, exp):
        assert_hits_equal(loaded.search(q, k=10), e)


def test_id_table_unicode_arrow_and_pickle(monkeypatch):
    ids = ["döc-ü", "文档-1", "plain", "e\u0301"]
    table = IdTable(ids[:2])
    table.add(ids[2:])
    check_table(table, {i: r for r, i in enumerate(ids)})
    arr = table.to_arrow()
    assert arr.to_pylist() == ids
    again = IdTable.from_arrow(arr.slice(1))  # a sliced Arrow array keeps its own offsets
    check_table(again, {i: r for r, i in enumerate(ids[1:])})
    with pytest.raises(ValueError, match="UTF-8"):
        table.add(["bad-\udc80"])
    check_table(table, {i: r for r, i in enumerate(ids)})
    # Pickling re-hashes on load, as another process (another hash seed) must.
    data = pickle.dumps(table)
    monkeypatch.setattr(embedded_ids, "_hash", lambda s: hash(s) ^ 0x5DEECE66D)
    check_table(pickle.loads(data), {i: r for r, i in enumerate(ids)})


def test_loads_index_written_with_a_list_of_ids(tmp_path):
    """Indexes written before ids became an Arrow array (same parquet `string` column) still load."""
    offsets = np.zeros(101, dtype=np.int64)
    offsets[5:] = 2
    write_postings(tmp_path, StoredPostings(100, offsets, np.array([0, 1], dtype=np.int32),
                                            np.array([1.0, 2.0], dtype=np.float32), ["x", "y"], [None, '{"a": 1}']))
    index = EmbeddedIndex.load(tmp_path)
    q = SparseVector(np.array([4], dtype=np.int32), np.array([1.0], dtype=np.float32))
    assert [(h.id, h.score, h.metadata) for h in index.search(q)] == [("y", 2.0, {"a": 1}), ("x", 1.0, {})]
    import pyarrow.parquet as pq

    import json

    def table_file():
        return tmp_path / json.loads((tmp_path / "index.json").read_text())["files"]["table"]

    assert str(pq.read_schema(table_file()).field("id").type) == "string"
    index.save(tmp_path)
    assert str(pq.read_schema(table_file()).field("id").type) == "string"


def test_id_memory_per_document():
    n = 100_000
    ids = [f"doc-{i}" for i in range(n)]
    index = EmbeddedIndex()
    # One posting per document (an empty vector is refused); its 8 bytes (row + weight, pending:
    # index + weight) are left out of the per-id figures below.
    one = SparseBatch(sp.csr_matrix((np.ones(10_000), np.zeros(10_000), np.arange(10_001)),
                                    shape=(10_000, VOCAB_SIZE), dtype=np.float32))
    for lo in range(0, n, 10_000):
        index.index(ids[lo : lo + 10_000], one)
        # Pending ids (<= 1/8 of the table) and CSR chunks; observed at most ~44 bytes per document.
        assert (index.memory_bytes() - index._offsets.nbytes - 8 * (lo + 10_000)) / (lo + 10_000) < 50
    index.compact()
    per_id = index._ids.nbytes / n  # observed 28.9: 8.9 id bytes + 8 offset + 8 hash + 4 row
    assert per_id < 32
    assert (index.memory_bytes() - index._offsets.nbytes - 8 * n) / n < 34  # + 1 tombstone byte; was ~100 with a dict
    assert index.count() == n and ids[12345] in index
