import ir_measures
import numpy as np
import pytest
from ir_measures import RR, Success

from lsr.eval.metrics import both_directions
from lsr.topk import topk_indices
from lsr.eval.trec import read_run, write_qrels, write_run


def _random_case(n_docs=50, per_doc=3, seed=0):
    rng = np.random.default_rng(seed)
    query_doc = np.repeat(np.arange(n_docs), per_doc)
    scores = rng.normal(size=(len(query_doc), n_docs)).astype(np.float32)
    scores[np.arange(len(query_doc)), query_doc] += rng.uniform(0, 3, size=len(query_doc)).astype(np.float32)
    return scores, query_doc


def _ir_measures(scores, qrels, qids, dids):
    run = {q: {d: float(s) for d, s in zip(dids, row)} for q, row in zip(qids, scores)}
    agg = ir_measures.calc_aggregate([Success @ 1, Success @ 5, Success @ 10, RR @ 10], qrels, run)
    return {"R@1": 100 * agg[Success @ 1], "R@5": 100 * agg[Success @ 5], "R@10": 100 * agg[Success @ 10],
            "MRR@10": 100 * agg[RR @ 10]}


def test_metrics_match_ir_measures_in_both_directions():
    scores, query_doc = _random_case()
    ours = both_directions(scores, query_doc)
    qids = [f"q{i}" for i in range(len(query_doc))]
    dids = [f"d{i}" for i in range(scores.shape[1])]
    t2i_qrels = {q: {dids[d]: 1} for q, d in zip(qids, query_doc)}
    i2t_qrels = {d: {} for d in dids}
    for q, d in zip(qids, query_doc):
        i2t_qrels[dids[d]][q] = 1
    ref_t2i = _ir_measures(scores, t2i_qrels, qids, dids)
    ref_i2t = _ir_measures(scores.T, i2t_qrels, dids, qids)
    for k in ref_t2i:
        assert ours["t2i"][k] == pytest.approx(ref_t2i[k], abs=1e-6)
        assert ours["i2t"][k] == pytest.approx(ref_i2t[k], abs=1e-6)
    assert 0 < ours["t2i"]["R@1"] < 100  # the case is neither trivial nor hopeless


def test_topk_is_sorted_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.5, 0.5, 0.9, 0.0]], dtype=np.float32)
    assert topk_indices(scores, 4).tolist() == [[3, 1, 2, 0]]


def test_trec_run_files_re_score_to_the_same_numbers(tmp_path):
    scores, query_doc = _random_case(seed=1)
    qids = [f"q{i}" for i in range(len(query_doc))]
    dids = [f"d{i}" for i in range(scores.shape[1])]
    write_run(tmp_path / "t2i.run", scores, qids, dids, "test")
    write_qrels(tmp_path / "t2i.qrels", {q: {dids[d]: 1} for q, d in zip(qids, query_doc)})
    qrels = list(ir_measures.read_trec_qrels(str(tmp_path / "t2i.qrels")))
    run = read_run(tmp_path / "t2i.run")
    assert all(len(v) == 10 for v in run.values())
    agg = ir_measures.calc_aggregate([Success @ 1, RR @ 10], qrels, run)
    ours = both_directions(scores, query_doc)["t2i"]
    assert 100 * agg[Success @ 1] == pytest.approx(ours["R@1"])
    assert 100 * agg[RR @ 10] == pytest.approx(ours["MRR@10"])
