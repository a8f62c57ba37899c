"""Two-phase search in the embedded index: heavy query terms pick candidates, the forward store re-scores
them exactly; the forward store is persisted crash-safely and follows index / delete / compact."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import scipy.sparse as sp

from lsr.backends import embedded_store
from lsr.backends.embedded import EmbeddedIndex
from lsr.backends.embedded_forward import TwoPhase, impact_lists
from lsr.backends.embedded_store import CorruptIndexError
from lsr.errors import InvalidInputError
from lsr.search.modes import Retrieval
from lsr.sparse import SparseBatch, SparseVector

V = 120


def _docs(rng, n, common: bool = False) -> SparseBatch:
    dense = rng.lognormal(0, 1, (n, V)).astype(np.float32) * (rng.random((n, V)) < 0.08)
    dense[:, 0] = rng.uniform(0.5, 1.5, n) if common else dense[:, 0]  # term 0 in every document
    dense[:, 1] += 0.01
    return SparseBatch(sp.csr_matrix(dense), V)


def _query(rng, nnz=30) -> SparseVector:
    ids = np.sort(rng.choice(V, nnz, replace=False))
    return SparseVector(ids, rng.lognormal(0, 1, nnz).astype(np.float32))


def _index(rng, n=400, **kwargs) -> EmbeddedIndex:
    index = EmbeddedIndex(vocab_size=V, **kwargs)
    index.index([f"d{i}" for i in range(n)], _docs(rng, n))
    return index


def _pairs(hits):
    return [(h.id, h.score) for h in hits]


def test_exact_re_scoring_equals_exact_search_on_the_candidates():
    rng = np.random.default_rng(0)
    index = _index(rng)
    for _ in range(10):
        q = _query(rng)
        exact = {h.id: h.score for h in index.search(q, k=400)}
        hits = index.search(q, k=10, mode="two_phase", method_parameters={"prune_ratio": 0.5})
        assert hits and all(h.score == exact[h.id] for h in hits)  # bit for bit: same float32 sums, same order
        rows = np.arange(400)
        q_dense = np.zeros(V, np.float32)
        q_dense[q.ids] = q.weights
        scores = index._scores(q.ids, q.weights, np.array([0, q.nnz]))[0]
        assert np.array_equal(index.forward_store().rescore(rows, q_dense), scores)


def test_recall_is_one_when_the_window_covers_every_match():
    rng = np.random.default_rng(1)
    index = EmbeddedIndex(vocab_size=V)
    index.index([f"d{i}" for i in range(300)], _docs(rng, 300, common=True))
    for _ in range(5):
        q = _query(rng)
        q = SparseVector(np.append(q.ids[q.ids != 0], 0), np.append(q.weights[q.ids != 0], 100.0))  # 0 heaviest
        exact = _pairs(index.search(q, k=10))
        wide = {"prune_ratio": 0.9, "expansion_rate": 30.0}  # stage 1: term 0 only; window 300 = every doc
        assert _pairs(index.search(q, k=10, mode="two_phase", method_parameters=wide)) == exact
        everything = {"prune_type": "top_k", "prune_ratio": q.nnz}
        assert _pairs(index.search(q, k=10, mode="two_phase", method_parameters=everything)) == exact


def test_the_retrieval_mode_reaches_the_backend_and_bad_parameters_are_refused():
    rng = np.random.default_rng(2)
    index = _index(rng)
    q = _query(rng)
    options = Retrieval("two_phase", {"prune_ratio": 0.3, "expansion_rate": 8}).backend_options()
    assert options == {"mode": "two_phase", "method_parameters": {"prune_ratio": 0.3, "expansion_rate": 8}}
    assert index.search(q, k=5, **options) == index.search_batch([q], k=5, **options)[0]
    for bad in ({"prune_ratio": 1.5}, {"expansion_rate": 0.5}, {"max_window_size": 10}, {"window": 3},
                {"prune_type": "top_k", "prune_ratio": 2.5}, {"prune_type": "nope"}):
        with pytest.raises(InvalidInputError):
            index.search(q, k=5, mode="two_phase", method_parameters=bad)
    with pytest.raises(InvalidInputError, match="max_window_size"):
        index.search(q, k=100, mode="two_phase", method_parameters={"expansion_rate": 200})
    with pytest.raises(InvalidInputError):
        index.search(q, k=5, method_parameters={"prune_ratio": 0.3})  # parameters without the mode


def test_heavy_terms_follow_opensearch_prune_rules():
    w = np.array([4.0, 1.0, 2.0, 0.5, 3.0], np.float32)
    assert TwoPhase.parse({"prune_ratio": 0.5}).heavy(w).tolist() == [True, False, True, False, True]
    assert TwoPhase.parse({"prune_type": "top_k", "prune_ratio": 2}).heavy(w).tolist() == [True, False, False, False, True]
    assert TwoPhase.parse({"prune_type": "abs_value", "prune_ratio": 2}).heavy(w).tolist() == [True, False, True, False, True]
    # alpha_mass: running sums 4, 7, 9, 10, 10.5 against 0.7 x 10.5 = 7.35
    assert TwoPhase.parse({"prune_type": "alpha_mass", "prune_ratio": 0.7}).heavy(w).tolist() == [True, False, False, False, True]
    assert TwoPhase.parse({}).window(10) == 50


def test_index_delete_and_compact_keep_the_forward_store_in_step():
    rng = np.random.default_rng(3)
    index = _index(rng, n=200, forward_store=True)
    more = _docs(rng, 100)
    index.index([f"d{i}" for i in range(150, 250)], more)  # 50 replacements, 50 new
    assert index.delete(["d3", "d7", "d240"]) == 3
    everything = {"prune_type": "top_k", "prune_ratio": 200}
    for compact in (False, True):
        if compact:
            index.compact()
        for _ in range(5):
            q = _query(rng)
            assert _pairs(index.search(q, k=10, mode="two_phase", method_parameters=everything)) == \
                _pairs(index.search(q, k=10))
        got = index.get("d160")
        assert got.ids.tolist() == more[10].ids.tolist() and np.array_equal(got.weights, more[10].weights)
    assert index.forward_store().n_rows == len(index) == 247


def test_the_forward_store_is_built_on_demand_and_its_memory_reported():
    rng = np.random.default_rng(4)
    index = _index(rng)
    index.compact()
    before = index.memory_bytes()
    index.search(_query(rng), k=5, mode="two_phase")
    fwd = index.forward_store()
    assert index.memory_bytes() - before == fwd.nbytes == fwd.indptr.nbytes + fwd.terms.nbytes + fwd.vals.nbytes


def test_persisted_reloaded_and_checked_like_the_postings(tmp_path):
    rng = np.random.default_rng(5)
    index = _index(rng, forward_store=True, directory=tmp_path / "idx")
    q = _query(rng)
    before = _pairs(index.search(q, k=10, mode="two_phase"))
    index.commit()
    index.close()
    manifest = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert set(manifest["forward"]) == {"fwd_indptr", "fwd_terms", "fwd_vals"}
    assert all(name in manifest["checksums"] for name in manifest["forward"].values())
    loaded = EmbeddedIndex.load(tmp_path / "idx")
    assert _pairs(loaded.search(q, k=10, mode="two_phase")) == before
    assert isinstance(loaded.forward_store().terms, np.memmap)  # mapped, not read into memory
    loaded.close()
    terms = tmp_path / "idx" / manifest["forward"]["fwd_terms"]
    data = bytearray(terms.read_bytes())
    data[-1] ^= 0xFF
    terms.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="fails its CRC-32"):
        EmbeddedIndex.load(tmp_path / "idx")


@pytest.mark.parametrize("failing_write", [4, 5, 6])  # offsets, docs, vals, then the three forward files
def test_a_save_failing_in_the_forward_store_leaves_the_previous_index_intact(tmp_path, monkeypatch, failing_write):
    rng = np.random.default_rng(6)
    index = _index(rng, forward_store=True, directory=tmp_path / "idx")
    index.commit()
    q = _query(rng)
    before = _pairs(index.search(q, k=10, mode="two_phase"))
    index.index(["new"], [SparseVector.from_dict({int(t): 50.0 for t in q.ids})])
    real, calls = embedded_store._save_npy, []

    def disk_full(tmp, arr):
        calls.append(tmp)
        if len(calls) == failing_write:
            tmp.write_bytes(b"\x93NUMPY partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tmp, arr)

    monkeypatch.setattr(embedded_store, "_save_npy", disk_full)
    with pytest.raises(OSError, match="No space left"):
        index.commit()
    assert "fwd" in calls[-1].name
    monkeypatch.setattr(embedded_store, "_save_npy", real)
    reopened = EmbeddedIndex.load(tmp_path / "idx")
    assert _pairs(reopened.search(q, k=10, mode="two_phase")) == before and "new" not in reopened
    assert not list((tmp_path / "idx").glob("*.tmp"))
    reopened.close()
    index.commit()
    again = EmbeddedIndex.load(tmp_path / "idx")
    assert again.search(q, k=1, mode="two_phase")[0].id == "new"
    assert len(list((tmp_path / "idx").glob("fwd_terms-*.npy"))) == 1


def test_n_postings_stage_one_reads_the_heaviest_postings_and_still_re_scores_exactly():
    rng = np.random.default_rng(7)
    index = _index(rng, n=500)
    q = _query(rng)
    exact = {h.id: h.score for h in index.search(q, k=500)}
    cut = {"prune_type": "none", "n_postings": 5, "expansion_rate": 5}
    hits = index.search(q, k=10, mode="two_phase", method_parameters=cut)
    assert hits and all(h.score == exact[h.id] for h in hits)
    lists = impact_lists(index, 5)
    assert int(np.diff(lists.offsets).max()) == 5 and lists.nbytes > 0
    t = int(np.argmax(np.diff(index._offsets)))  # the longest list keeps its 5 heaviest postings, rows ascending
    seg = index._vals[index._offsets[t]:index._offsets[t + 1]]
    kept = lists.vals[lists.offsets[t]:lists.offsets[t + 1]]
    assert sorted(kept.tolist()) == sorted(np.sort(seg)[-5:].tolist())
    assert np.all(np.diff(lists.docs[lists.offsets[t]:lists.offsets[t + 1]]) > 0)
    everything = {"prune_type": "none", "n_postings": 10_000, "expansion_rate": 60}  # whole lists, window >= matches
    assert _pairs(index.search(q, k=10, mode="two_phase", method_parameters=everything)) == _pairs(index.search(q, k=10))
    top = index.search(q, k=3, mode="two_phase", method_parameters=everything)
    index.delete([top[0].id])  # a deleted row is never a candidate; new rows are cut again
    index.index(["fresh"], [SparseVector(q.ids, q.weights * 100)])
    after = index.search(q, k=3, mode="two_phase", method_parameters=everything)
    assert after[0].id == "fresh" and top[0].id not in {h.id for h in after}
    with pytest.raises(InvalidInputError, match="n_postings"):
        index.search(q, k=3, mode="two_phase", method_parameters={"n_postings": -1})
