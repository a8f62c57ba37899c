"""Paired significance tests on TREC runs (`lsr.eval.significance`, `lsr compare`)."""

import json

import numpy as np
import pytest

from lsr.cli.main import main
from lsr.eval.significance import (bootstrap_interval, clustered_mcnemar_p, compare_runs, hits_at, mcnemar_p,
                                   relevance_clusters)
from lsr.eval.trec import read_qrels, read_ranking, write_qrels


def write_ranking(path, ranking: dict[str, list[str]]) -> None:
    lines = [f"{q} Q0 {d} {r} {10 - r}.0 t" for q, docs in ranking.items() for r, d in enumerate(docs, 1)]
    path.write_text("\n".join(reversed(lines)) + "\n")  # out of order on purpose: the rank column decides


QRELS = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1, "c2": 1}, "q4": {"d": 1}}


def test_rankings_follow_the_rank_column_and_bad_lines_are_named(tmp_path):
    write_ranking(tmp_path / "r.run", {"q1": ["x", "a", "y"]})
    assert read_ranking(tmp_path / "r.run") == {"q1": ["x", "a", "y"]}
    (tmp_path / "bad.run").write_text("q1 Q0 a 1 0.5 t\nq1 Q0 b\n")
    with pytest.raises(ValueError, match=r"bad.run:2 is not a TREC line 'qid Q0 docid rank score tag'"):
        read_ranking(tmp_path / "bad.run")


def test_hits_count_missing_queries_as_misses_and_reject_foreign_queries(tmp_path):
    write_qrels(tmp_path / "q.qrels", QRELS)
    qrels = read_qrels(tmp_path / "q.qrels")
    ranking = {"q1": ["a"], "q2": ["x", "b"], "q3": ["c2"]}  # q4 not ranked
    assert hits_at(ranking, qrels, 1).tolist() == [True, False, True, False]
    assert hits_at(ranking, qrels, 2).tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match="1 queries the qrels do not judge"):
        hits_at({"other": ["a"]}, qrels, 1)
    with pytest.raises(ValueError, match="R@5 needs 5 ranked documents per query but run holds at most 2"):
        hits_at(ranking, qrels, 5)


def test_mcnemar_matches_the_hand_computed_binomial():
    # 8 queries only A hits, 2 only B hits, 5 both: two-sided p = 2 * P(X <= 2 | 10, 1/2) = 2 * 56 / 1024
    a = np.array([True] * 8 + [False] * 2 + [True] * 5)
    b = np.array([False] * 8 + [True] * 2 + [True] * 5)
    assert mcnemar_p(a, b) == pytest.approx(112 / 1024)
    assert mcnemar_p(a, a) == 1.0


def test_bootstrap_interval_brackets_the_difference_and_is_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.random(2000) < 0.6, rng.random(2000) < 0.5
    low, high = bootstrap_interval(a, b, samples=2000, seed=1)
    observed = 100 * (a.mean() - b.mean())
    assert low < observed < high
    assert 2 < high - low < 10  # about +-1.96 * sqrt(0.49 / 2000) * 100 each side
    assert bootstrap_interval(a, b, samples=2000, seed=1) == (low, high)
    assert bootstrap_interval(a, a) == (0.0, 0.0)
    assert bootstrap_interval(np.ones(5, bool), np.zeros(5, bool)) == (100.0, 100.0)
    with pytest.raises(ValueError, match="equal non-empty"):
        bootstrap_interval(a, b[:10])


def test_queries_with_the_same_relevant_items_form_one_cluster():
    qrels = {"c1a": {"img1"}, "c2": {"img2"}, "c1b": {"img1"}, "i1": {"c1", "c2"}, "i2": {"c2", "c1"}}
    # sorted: c1a, c1b, c2, i1, i2
    assert relevance_clusters(qrels).tolist() == [0, 0, 1, 2, 2]
    assert relevance_clusters({q: set(r) for q, r in QRELS.items()}).tolist() == [0, 1, 2, 3]


def test_clustered_mcnemar_matches_the_hand_computed_statistic():
    # clusters 0, 0 | 1, 1 | 2: d = (2 - 0), (0 - 1), (1 - 0) -> X^2 = 2^2 / (4 + 1 + 1), chi-square 1 df
    a = np.array([True, True, False, True, True])
    b = np.array([False, False, True, True, False])
    assert clustered_mcnemar_p(a, b, np.array([0, 0, 1, 1, 2])) == pytest.approx(0.414216, abs=1e-6)
    # one query per cluster: the asymptotic McNemar (only-A 8, only-B 2 -> X^2 = 36 / 10)
    a, b = np.array([True] * 8 + [False] * 2), np.array([False] * 8 + [True] * 2)
    assert clustered_mcnemar_p(a, b, np.arange(10)) == pytest.approx(0.057780, abs=1e-6)
    assert clustered_mcnemar_p(a, a, np.arange(10)) == 1.0
    with pytest.raises(ValueError, match="one number per query"):
        clustered_mcnemar_p(a, b, np.arange(3))


def test_the_cluster_bootstrap_widens_the_interval_when_a_cluster_moves_together():
    rng = np.random.default_rng(5)
    a, b = np.repeat(rng.random(500) < 0.6, 4), np.repeat(rng.random(500) < 0.5, 4)  # 4 equal copies per cluster
    clusters = np.repeat(np.arange(500), 4)
    low, high = bootstrap_interval(a, b, samples=2000, seed=1)
    c_low, c_high = bootstrap_interval(a, b, samples=2000, seed=1, clusters=clusters)
    assert 1.6 < (c_high - c_low) / (high - low) < 2.5  # sqrt(4) = 2: 500 independent draws, not 2,000
    assert c_low < 100 * (a.mean() - b.mean()) < c_high
    # one query per cluster is the plain bootstrap, draw for draw
    assert bootstrap_interval(a, b, samples=500, seed=2, clusters=np.arange(2000)) == pytest.approx(
        bootstrap_interval(a, b, samples=500, seed=2))


def test_compare_runs_one_run_and_the_mean_of_several(tmp_path):
    write_qrels(tmp_path / "q.qrels", QRELS)
    fill = ["f1", "f2", "f3", "f4"]  # depth 5, so R@5 is defined
    write_ranking(tmp_path / "a.run", {"q1": ["a"], "q2": ["b"], "q3": ["c"], "q4": ["x", "d"] + fill[:3]})
    write_ranking(tmp_path / "a2.run", {"q1": ["a"], "q2": ["x"], "q3": ["x"], "q4": ["x"] + fill})
    write_ranking(tmp_path / "b.run", {"q1": ["a"], "q2": ["x", "b"] + fill[:3], "q3": ["x"], "q4": ["x"]})
    r1, r5 = compare_runs([tmp_path / "a.run"], tmp_path / "b.run", tmp_path / "q.qrels", ks=(1, 5), samples=500)
    assert (r1.a, r1.b, r1.diff, r1.queries) == (75.0, 25.0, 50.0, 4)
    assert r1.mcnemar_p == pytest.approx(0.5)  # 2 discordant queries, both for A
    assert (r5.a, r5.b) == (100.0, 50.0)
    mean = compare_runs([tmp_path / "a.run", tmp_path / "a2.run"], tmp_path / "b.run", tmp_path / "q.qrels", ks=(1,))
    assert mean[0].a == 50.0 and mean[0].mcnemar_p is None and mean[0].runs_a == 2
    assert r1.clusters == 4  # every query judged relevant to its own items


def test_compare_runs_resamples_queries_of_one_image_together(tmp_path):
    # text->image: captions c1..c4 of image A, c5..c8 of image B; A hits image A's four captions, B none
    write_qrels(tmp_path / "q.qrels", {f"c{i}": {"A" if i <= 4 else "B": 1} for i in range(1, 9)})
    write_ranking(tmp_path / "a.run", {f"c{i}": ["A" if i <= 4 else "x"] for i in range(1, 9)})
    write_ranking(tmp_path / "b.run", {f"c{i}": ["x"] for i in range(1, 9)})
    args = ([tmp_path / "a.run"], tmp_path / "b.run", tmp_path / "q.qrels", (1,), 400)
    (grouped,), (plain,) = compare_runs(*args), compare_runs(*args, cluster=False)
    assert (grouped.clusters, plain.clusters, grouped.queries) == (2, 8, 8)
    assert grouped.diff == plain.diff == 50.0
    assert plain.mcnemar_p == pytest.approx(2 / 16)  # exact: 4 vs 0 discordant queries, 2 * (1/2)^4
    assert grouped.mcnemar_p == pytest.approx(0.317311, abs=1e-6)  # clustered: d = 4, 0 -> X^2 = 16 / 16
    assert (grouped.low, grouped.high) == (0.0, 100.0)  # two images drawn: both A, one each, or both B
    assert 0.0 < plain.low and plain.high < 100.0


def test_lsr_compare_prints_writes_json_and_names_bad_input(tmp_path, capsys):
    write_qrels(tmp_path / "q.qrels", QRELS)
    deep = [f"f{i}" for i in range(10)]  # depth 10, so R@10 is defined
    write_ranking(tmp_path / "a.run", {"q1": ["a"] + deep, "q2": ["b"], "q3": ["c"], "q4": ["d"]})
    write_ranking(tmp_path / "b.run", {"q1": ["a"] + deep, "q2": ["x"], "q3": ["x"], "q4": ["x"]})
    args = ["compare", "--qrels", str(tmp_path / "q.qrels"), "--run", str(tmp_path / "a.run"),
            "--against", str(tmp_path / "b.run"), "--samples", "200"]
    assert main(args + ["--json", str(tmp_path / "out" / "c.json")]) == 0
    assert "R@1 100.0 25.0 +75.0" in " ".join(capsys.readouterr().out.split())
    record = json.loads((tmp_path / "out" / "c.json").read_text())
    assert [r["metric"] for r in record["rows"]] == ["R@1", "R@5", "R@10"] and record["rows"][0]["diff"] == 75.0
    assert record["cluster"] is True and record["rows"][0]["clusters"] == 4
    assert main(args + ["--no-cluster", "--json", str(tmp_path / "plain.json")]) == 0
    assert json.loads((tmp_path / "plain.json").read_text())["cluster"] is False
    write_qrels(tmp_path / "other.qrels", {"z": {"a": 1}})
    assert main(args[:2] + [str(tmp_path / "other.qrels")] + args[3:]) == 2
    assert "do not judge" in capsys.readouterr().err
