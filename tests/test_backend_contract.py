"""The backend contract (`lsr.backends.base`, `lsr.backends.validate`), run against ALL THREE backends:
the embedded index, a real OpenSearch node (marked `opensearch`) and a real Elasticsearch node (marked
`elasticsearch`), each started by the project's own manager.

OpenSearch (``rank_features``) and Elasticsearch (``sparse_vector``) keep 9 significant bits of each stored
weight, so their scores are compared with `RELATIVE_SCORE_BOUND` (the same 2^-8 for both); ids, failures
and reasons must be identical.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from lsr.backends.base import SparseBackend
from lsr.backends.elasticsearch import RELATIVE_SCORE_BOUND as ES_BOUND, ElasticsearchIndex
from lsr.backends.embedded import EmbeddedIndex
from lsr.backends.opensearch import RELATIVE_SCORE_BOUND, OpenSearchIndex
from lsr.backends.validate import MAX_QUERY_TERMS, MIN_WEIGHT
from lsr.prune import cap_terms
from lsr.sparse import VOCAB_SIZE, SparseBatch, SparseVector

BACKENDS = ["embedded", pytest.param("opensearch", marks=pytest.mark.opensearch),
            pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)]
assert ES_BOUND == RELATIVE_SCORE_BOUND  # one documented precision for both engines


def vec(pairs: dict[int, float]) -> SparseVector:
    return SparseVector(np.array(list(pairs), dtype=np.int32), np.array(list(pairs.values()), dtype=np.float32))


class Harness:
    """Makes a fresh, empty backend of one kind and reopens it as another process would."""

    def __init__(self, kind: str, tmp_path, request):
        self.kind, self.tmp_path, self.request = kind, tmp_path, request
        self.made: list = []

    def make(self) -> SparseBackend:
        if self.kind == "embedded":
            backend = EmbeddedIndex(directory=self.tmp_path / f"index-{len(self.made)}")
        elif self.kind == "elasticsearch":
            url, vocab = self.request.getfixturevalue("elasticsearch_url"), self.request.getfixturevalue("vocab")
            backend = ElasticsearchIndex(url, index=f"lsr-contract-{uuid.uuid4().hex[:8]}", vocab=vocab)
        else:
            url, vocab = self.request.getfixturevalue("opensearch_url"), self.request.getfixturevalue("vocab")
            backend = OpenSearchIndex(url, index=f"lsr-contract-{uuid.uuid4().hex[:8]}", vocab=vocab)
        self.made.append(backend)
        return backend

    def reopen(self, backend: SparseBackend) -> SparseBackend:
        if self.kind == "embedded":
            return EmbeddedIndex.load(backend.directory)
        if self.kind == "elasticsearch":
            return ElasticsearchIndex(self.request.getfixturevalue("elasticsearch_url"), index=backend.index_name,
                                      vocab=backend.naming.vocab)
        url = self.request.getfixturevalue("opensearch_url")  # a new connection: `with` closed the old one
        return OpenSearchIndex(url, index=backend.index_name, vocab=backend.naming.vocab)

    def cleanup(self) -> None:
        for backend in self.made:
            if isinstance(backend, (OpenSearchIndex, ElasticsearchIndex)):
                self.reopen(backend).drop()


@pytest.fixture(params=BACKENDS)
def harness(request, tmp_path):
    h = Harness(request.param, tmp_path, request)
    yield h
    h.cleanup()


@pytest.fixture()
def backend(harness) -> SparseBackend:
    return harness.make()


def corpus(n: int = 40, seed: int = 0) -> tuple[list[str], SparseBatch]:
    rng = np.random.default_rng(seed)
    vectors = [SparseVector(rng.choice(200, 12, replace=False) + 1000, rng.gamma(2.0, 0.5, 12) + 0.05)
               for _ in range(n)]
    return [f"d{i}" for i in range(n)], SparseBatch.from_vectors(vectors)


def assert_scores_close(hits, reference: list[tuple[str, float]], k: int) -> None:
    """`hits` are the top-k of `reference` (exact (id, score), best first, more than k of them) up to
    the 9-bit weight bound: each score within the bound of its exact one, and only near-ties reordered."""
    exact = dict(reference)
    assert len(hits) == min(k, len(reference))
    for h in hits:
        assert h.id in exact, h.id
        assert exact[h.id] * (1 - RELATIVE_SCORE_BOUND) - 1e-6 <= h.score <= exact[h.id] * (1 + 1e-6) + 1e-6
    kth = reference[k - 1][1] if len(reference) >= k else 0.0
    must = {i for i, score in reference if score > kth / (1 - RELATIVE_SCORE_BOUND) + 1e-6}
    assert must <= {h.id for h in hits}


# ----------------------------------------------------------------------------------------- writing


def test_index_on_a_new_index_creates_it_and_is_searchable_at_once(backend):
    """New-user failure 1: OpenSearch's index() on a missing index failed inside a settings read."""
    report = backend.index(["a", "b"], [vec({1000: 1.0, 1001: 0.5}), vec({1001: 2.0})], [{"caption": "x"}, None])
    assert report.indexed == 2 and report.failed == {}
    assert backend.count() == 2 and "a" in backend and "zzz" not in backend
    hits = backend.search(vec({1001: 1.0}), k=5, explain=True)
    assert [h.id for h in hits] == ["b", "a"]
    assert hits[0].contributions == pytest.approx({1001: 2.0}, rel=RELATIVE_SCORE_BOUND)
    assert backend.metadata("a") == {"caption": "x"} and backend.metadata("b") == {}


def test_replacing_an_id_overwrites_it(backend):
    backend.index(["a", "b"], [vec({1000: 1.0}), vec({1000: 0.5})], [{"v": 1}, None])
    backend.index(["a"], [vec({1002: 3.0})], [{"v": 2}])
    assert backend.count() == 2
    assert backend.search(vec({1000: 1.0}), k=5)[0].id == "b" and len(backend.search(vec({1000: 1.0}))) == 1
    assert backend.get("a").to_dict() == {1002: 3.0} and backend.metadata("a") == {"v": 2}


@pytest.mark.parametrize("call", ["index", "delete"])
def test_bare_string_and_duplicate_ids_are_errors_and_write_nothing(backend, call):
    backend.index(["keep"], [vec({1000: 1.0})])
    with pytest.raises(ValueError, match="single string"):
        backend.index("abc", [vec({1000: 1.0})] * 3) if call == "index" else backend.delete("keep")
    with pytest.raises(ValueError, match="twice"):
        backend.index(["x", "y", "x"], [vec({1000: 1.0})] * 3) if call == "index" else backend.delete(["keep", "keep"])
    assert backend.count() == 1 and "keep" in backend and "x" not in backend


def test_length_and_vocabulary_mismatches_are_errors(backend):
    with pytest.raises(ValueError, match="one of each"):
        backend.index(["a", "b"], [vec({1000: 1.0})])
    with pytest.raises(ValueError, match="one of each"):
        backend.index(["a"], [vec({1000: 1.0})], [{}, {}])
    with pytest.raises(ValueError, match="over 100 tokens"):
        backend.index(["a"], SparseBatch.from_vectors([vec({5: 1.0})], vocab_size=100))
    assert backend.count() == 0


BAD_DOCUMENTS = {
    "empty": (SparseVector(np.zeros(0, np.int32), np.zeros(0, np.float32)), "no positive weight"),
    "zero": ({1000: 0.0, 1001: 0.0}, "no positive weight"),
    "nan": ({1000: float("nan")}, "NaN or inf"),
    "inf": ({1000: float("inf"), 1001: 1.0}, "NaN or inf"),
    "negative": ({1000: 1.0, 1001: -0.5}, "negative weight"),
    "subnormal": ({1000: 1e-40}, "no positive weight"),
    "unknown-token": ({VOCAB_SIZE + 5: 1.0}, "outside the vocabulary"),
    "negative-token": ({-3: 1.0}, "outside the vocabulary"),
    "not-a-vector": ([1.0, 2.0], "expected a SparseVector"),
}
BAD_IDS = {"": "non-empty string", "x" * 513: "513 bytes", "bad-\udc80": "UTF-8"}


def test_bad_documents_fail_one_by_one_with_their_reason(backend):
    ids = ["good-1"] + list(BAD_DOCUMENTS) + list(BAD_IDS) + ["bad-meta", "good-2"]
    vectors = ([vec({1000: 1.0})] + [v for v, _ in BAD_DOCUMENTS.values()] + [vec({1000: 1.0})] * len(BAD_IDS)
               + [vec({1000: 1.0}), {1000: 2.0, 1003: 1e-42}])
    metadata = [None] * (len(ids) - 2) + [{"when": object()}, {"ok": True}]
    report = backend.index(ids, vectors, metadata)
    assert report.indexed == 2
    expected = {**{k: r for k, (_, r) in BAD_DOCUMENTS.items()}, **BAD_IDS, "bad-meta": "JSON"}
    assert set(report.failed) == set(expected)
    for doc_id, reason in expected.items():
        assert reason in report.failed[doc_id], (doc_id, report.failed[doc_id])
    assert backend.count() == 2 and not any(doc_id in backend for doc_id in BAD_DOCUMENTS)
    assert backend.get("good-2").to_dict() == {1000: 2.0}  # the sub-normal weight was dropped, the rest kept
    assert backend.metadata("good-2") == {"ok": True}


# ----------------------------------------------------------------------------------------- searching


def test_k_must_be_a_positive_integer(backend):
    backend.index(["a"], [vec({1000: 1.0})])
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be"):
            backend.search(vec({1000: 1.0}), k=k)
        with pytest.raises(ValueError, match="k must be"):
            backend.search_batch([vec({1000: 1.0})], k=k)
    assert [h.id for h in backend.search(vec({1000: 1.0}), k=1)] == ["a"]


def test_query_weights_zero_dropped_negative_rejected_unknown_rejected(backend):
    """New-user failure 2: a negative query weight reached the node and came back as a raw HTTP 400."""
    backend.index(["a", "b"], [vec({1000: 1.0}), vec({1001: 1.0})])
    assert [h.id for h in backend.search(vec({1000: 1.0, 1001: 0.0}))] == ["a"]
    assert backend.search(vec({1001: 1e-40})) == []  # sub-normal: dropped, nothing left
    assert backend.search(SparseVector(np.zeros(0, np.int32), np.zeros(0, np.float32))) == []
    with pytest.raises(ValueError, match="negative weight"):
        backend.search(vec({1000: 1.0, 1001: -0.5}))
    with pytest.raises(ValueError, match="negative weight"):
        backend.search_batch([vec({1000: 1.0}), vec({1001: -0.5})])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        backend.search(vec({VOCAB_SIZE + 1: 1.0}))


def test_long_queries_keep_their_heaviest_terms(backend):
    ids, docs = corpus(60)
    backend.index(ids, docs)
    rng = np.random.default_rng(3)
    terms = rng.choice(np.arange(1000, 1000 + 1500), 1500, replace=False)
    long = SparseVector(terms, rng.uniform(0.01, 1.0, 1500))
    capped = cap_terms(long, MAX_QUERY_TERMS)
    assert capped.nnz == MAX_QUERY_TERMS
    reference = EmbeddedIndex()
    reference.index(ids, docs)
    expected = [(h.id, h.score) for h in reference.search(capped, k=20)]
    assert_scores_close(backend.search(long, k=10), expected, 10)
    assert_scores_close(backend.search_batch([long], k=10)[0], expected, 10)


def test_batch_search_equals_single_searches_and_explains(backend):
    ids, docs = corpus(50, seed=1)
    backend.index(ids, docs)
    queries = corpus(8, seed=2)[1]
    batch = backend.search_batch(queries, k=7, explain=True)
    for q, hits in zip(queries, batch):
        single = backend.search(q, k=7, explain=True)
        assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in single]
        for h in hits:
            assert sum(h.contributions.values()) == pytest.approx(h.score, rel=RELATIVE_SCORE_BOUND)


def test_unknown_search_options_are_errors(backend):
    backend.index(["a"], [vec({1000: 1.0})])
    with pytest.raises(ValueError, match="does not support|Unknown search option"):
        backend.search(vec({1000: 1.0}), colour="red")
    assert backend.search(vec({1000: 1.0}), mode="exact")[0].id == "a"


# ----------------------------------------------------------------------------------------- lifecycle


def test_get_metadata_contains_delete(backend):
    backend.index(["a", "b"], [vec({1000: 1.5}), vec({1001: 1.0})], [{"path": "a.jpg"}, {"n": 2}])
    assert backend.get("a").to_dict() == {1000: 1.5}
    assert backend.metadata("a") == {"path": "a.jpg"} and backend.metadata("b") == {"n": 2}
    for missing in ("nope", ""):
        assert missing not in backend
        with pytest.raises(KeyError):
            backend.get(missing)
        with pytest.raises(KeyError):
            backend.metadata(missing)
    assert backend.delete(["a", "nope"]) == 1 and backend.delete([]) == 0
    assert backend.count() == 1 and "a" not in backend and backend.search(vec({1000: 1.0})) == []


def test_commit_and_context_manager_persist_with_provenance(harness):
    record = {"model": "d2s-test", "model_hash": "abc123", "vocab_hash": "v1", "vocab_size": VOCAB_SIZE}
    backend = harness.make()
    with backend:
        backend.index(["a", "b"], [vec({1000: 1.0}), vec({1001: 1.0})])
        backend.record_provenance(record)
    again = harness.reopen(backend)
    assert again.count() == 2 and [h.id for h in again.search(vec({1001: 1.0}))] == ["b"]
    assert again.provenance() == {**record, "naming": "id" if harness.kind == "embedded" else "wordpiece"}
    failing = harness.make()
    with pytest.raises(RuntimeError), failing:
        failing.index(["c"], [vec({1000: 1.0})])
        raise RuntimeError("boom")
    if harness.kind == "embedded":  # an error inside the block: not committed (OpenSearch acknowledged writes stay)
        assert not (failing.directory / "index.json").exists()
        with pytest.raises(ValueError, match="closed"):
            failing.search(vec({1000: 1.0}))


def test_empty_backend_answers_like_an_empty_index(backend):
    q = vec({1000: 1.0})
    assert backend.count() == 0 and backend.search(q) == [] and backend.search_batch([q, q]) == [[], []]
    assert backend.delete(["x"]) == 0 and "x" not in backend and backend.provenance() is None


# ----------------------------------------------------------------------------------------- OpenSearch only


@pytest.mark.opensearch
def test_index_calls_do_not_rewrite_settings_or_refresh(opensearch_url, vocab):
    """New-user failure 3: each index() call read and rewrote the settings and refreshed; now a load
    pays one refresh, at its first read or commit()."""
    index = OpenSearchIndex(opensearch_url, index=f"lsr-contract-{uuid.uuid4().hex[:8]}", vocab=vocab)
    calls: list[str] = []
    for name in ("get_settings", "put_settings", "refresh"):
        original = getattr(index.client.indices, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        setattr(index.client.indices, name, spy)
    try:
        for i in range(5):
            index.index([f"d{i}"], [vec({1000 + i: 1.0})])
        assert calls == []
        assert index.count() == 5 and calls == ["refresh"]
        index.index(["d9"], [vec({1009: 1.0})])
        index.commit()
        index.commit()  # nothing new: no second refresh
        assert calls == ["refresh", "refresh"] and index.count() == 6
    finally:
        index.drop()


@pytest.mark.parametrize("remote_kind", BACKENDS[1:])
def test_same_calls_same_outcome_in_both_backends(remote_kind, request, vocab, tmp_path):
    ids, docs = corpus(80, seed=5)
    batch = list(docs) + [vec({1000: -1.0}), {1001: float("nan")}]
    all_ids = ids + ["neg", "nan"]
    queries = list(corpus(12, seed=6)[1])
    embedded = EmbeddedIndex()
    remote = Harness(remote_kind, tmp_path, request).make()
    try:
        reports = [b.index(all_ids, batch) for b in (embedded, remote)]
        assert reports[0] == reports[1]
        for b in (embedded, remote):
            b.index(ids[:5], list(docs)[5:10])  # replace five ids
            assert b.delete(ids[-3:] + ["missing"]) == 3
        assert embedded.count() == remote.count() == 77
        exact = embedded.search_batch(queries, k=20)
        found = remote.search_batch(queries, k=10)
        for e, f in zip(exact, found):
            assert_scores_close(f, [(h.id, h.score) for h in e], 10)
    finally:
        remote.drop()



# ----------------------------------------------------------------------------------------- filters (issue 37)


def _photo_corpus(n: int = 60):
    """Documents with photo metadata (`lsr.images.photo_meta`'s fields) and one shared token, so every
    document scores and a filter decides which k come back."""
    ids, batch = corpus(n, seed=3)
    vectors = [SparseVector(np.append(v.ids, 999), np.append(v.weights, 0.01 * (i + 1)).astype(np.float32))
               for i, v in enumerate(batch)]
    meta = [{"path": f"/photos/{ids[i]}.jpg", "taken": f"20{10 + i % 12:02d}-0{1 + i % 9}-1{i % 10}T12:00:00",
             "camera": ["canon", "canon eos 5d"] if i % 3 == 0 else ["nikon"], "width": 100 + 10 * i,
             "height": 500, "orientation": "landscape" if 100 + 10 * i > 500 else "portrait",
             "file_type": "jpeg" if i % 2 else "png"} for i in range(n)]
    folders = [f"{'2023' if i % 4 else '2024'}/{'beach' if i % 5 else 'city'}/{ids[i]}.jpg" for i in range(n)]
    return folders, SparseBatch.from_vectors(vectors), meta


def test_a_filter_gives_the_same_k_hits_in_every_backend(backend):
    from lsr.backends.filters import Filter, Prefix, Range, Term

    ids, batch, meta = _photo_corpus()
    backend.index(ids, batch, meta)
    query = vec({999: 1.0, int(batch[0].ids[0]): 0.5})
    filters = [Filter.of(Prefix("id", "2023/")), Filter.of(Prefix("id", "2023/beach/")),
               Filter.of(Range("taken", gte="2015-01-01T00:00:00", lt="2019-06-01T00:00:00")),
               Filter.of(Term("camera", "canon"), Range("width", gte=300)),
               Filter.of(Term("orientation", "portrait"), Term("file_type", ["jpeg"])),
               Filter.of(Prefix("id", "2024/"), Range("taken", lt="2016-01-01T00:00:00"))]
    for flt in filters:
        allowed = [i for i, m in zip(ids, meta) if flt.matches(i, m)]
        reference = sorted(((i, float(query.dot(batch[ids.index(i)]))) for i in allowed), key=lambda t: -t[1])
        k = 5
        hits = backend.search(query, k=k, filter=flt)
        assert len(hits) == min(k, len(allowed)), flt  # filtered before the top-k cut: k hits when k exist
        assert {h.id for h in hits} <= set(allowed)
        assert_scores_close(hits, reference, min(k, len(reference)))
        assert [h.id for h in backend.search_batch([query], k=k, filter=flt)[0]] == [h.id for h in hits]


def test_a_filter_on_an_unknown_field_or_of_the_wrong_kind_is_refused(backend):
    from lsr.backends.filters import Filter, Range, Term

    with pytest.raises(ValueError, match="Cannot filter on"):
        Filter.of(Term("colour", "red"))
    with pytest.raises(ValueError, match="not a date"):
        Range("taken", gte="yesterday")
    with pytest.raises(ValueError, match="filter= takes"):
        backend.search(vec({1: 1.0}), k=1, filter={"camera": "canon"})
