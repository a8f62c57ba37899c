"""Searches while the index changes: an embedded index extended and committed while readers keep loading
and searching it, and an OpenSearch index taking a bulk load while searches run. Readers see the old or
the new state, never an error or a half-written one. Bounded: a few thousand documents, loopback only."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lsr.backends.embedded import EmbeddedIndex
from lsr.sparse import SparseBatch, SparseVector

VOCAB = 30522


def _batch(start: int, n: int, seed: int) -> tuple[list[str], SparseBatch]:
    rng = np.random.default_rng(seed)
    vectors = []
    for _ in range(n):
        ids = np.unique(rng.integers(1000, VOCAB, size=16)).astype(np.int32)
        vectors.append(SparseVector(ids, rng.uniform(0.1, 1.0, size=len(ids)).astype(np.float32)))
    return [f"d{start + i}" for i in range(n)], SparseBatch.from_vectors(vectors, vocab_size=VOCAB)


def _readers(n: int, work, stop: threading.Event) -> tuple[list[threading.Thread], list[BaseException], list]:
    errors: list[BaseException] = []
    seen: list = []

    def loop():
        while not stop.is_set():
            try:
                seen.append(work())
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(exc)
                return

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, errors, seen


def test_readers_see_old_or_new_embedded_state_while_a_writer_commits(tmp_path):
    base, step, commits = 2000, 200, 12
    ids, batch = _batch(0, base, seed=0)
    probe = batch.rows(slice(0, 1))[0]  # d0's own vector: d0 is first in every state
    writer = EmbeddedIndex(VOCAB, directory=tmp_path / "index")
    writer.index(ids, batch)
    writer.commit()
    allowed = {base + step * i for i in range(commits + 1)}

    def read_and_search():
        index = EmbeddedIndex.load(tmp_path / "index")
        hits = index.search(probe, k=3)
        newest = f"d{index.count() - 1}"
        return index.count(), hits[0].id, newest in index, f"d{index.count()}" in index

    stop = threading.Event()
    threads, errors, seen = _readers(3, read_and_search, stop)
    try:
        for i in range(commits):
            more_ids, more = _batch(base + step * i, step, seed=i + 1)
            writer.index(more_ids, more)
            writer.commit()
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        writer.close()
    assert not errors, f"a reader failed during commits: {errors[0]!r}"
    assert len(seen) >= commits  # readers really ran alongside the writer
    counts = {count for count, _, _, _ in seen}
    assert counts <= allowed and len(counts) > 1  # only committed states, and more than one of them seen
    assert all(top == "d0" and has_newest and not has_next for _, top, has_newest, has_next in seen)
    assert EmbeddedIndex.load(tmp_path / "index").count() == max(allowed)


@pytest.mark.opensearch
def test_searches_run_without_error_during_a_bulk_load_into_the_same_index(make_index, vocab):
    pytest.importorskip("opensearchpy")
    index = make_index()
    base, extra = 1000, 6000
    ids, batch = _batch(0, base, seed=0)
    index.index(ids, batch)
    index.commit()
    probe = batch.rows(slice(0, 1))[0]
    from lsr.backends.opensearch import OpenSearchIndex

    reader = OpenSearchIndex(index.client, index=index.index_name, vocab=vocab)

    def search():
        hits = reader.search(probe, k=3)
        return hits[0].id, reader.client.count(index=index.index_name)["count"]

    stop = threading.Event()
    threads, errors, seen = _readers(2, search, stop)
    try:
        more_ids, more = _batch(base, extra, seed=1)
        report = index.bulk((i, v, None) for i, v in zip(more_ids, more.rows(slice(0, extra))))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert report.indexed == extra and not report.failed
    assert not errors, f"a search failed during the bulk load: {errors[0]!r}"
    assert len(seen) >= 5
    assert all(top == "d0" for top, _ in seen)
    counts = [count for _, count in seen]
    assert all(base <= c <= base + extra for c in counts)
    index.commit()
    assert reader.count() == base + extra
