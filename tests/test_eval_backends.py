"""`lsr eval --backend`: retrieval through the backends agrees with the in-memory matrix path
(the embedded index exactly, OpenSearch within its 9-bit weight bound), and its TREC runs re-score."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lsr.d2s.model import D2SConfig, D2SModel
from lsr.eval.run import ranked_rows, tolerance
from tests.conftest import synthetic_split


def write_npy_split(folder, split) -> None:
    folder.mkdir(parents=True)
    np.save(folder / "image_emb.npy", split.doc_emb)
    np.save(folder / "text_emb.npy", split.query_emb)
    (folder / "image_ids.txt").write_text("\n".join(split.doc_ids) + "\n")
    (folder / "text_ids.txt").write_text("\n".join(split.query_ids) + "\n")
    (folder / "text_image_ids.txt").write_text("\n".join(split.doc_ids[d] for d in split.query_doc) + "\n")
    words = ["dog", "cat", "red", "car", "boat", "man", "grass", "street"]
    (folder / "texts.txt").write_text("\n".join(f"a {words[d % 8]} and a {words[(d // 8) % 8]}"
                                                for d in split.query_doc) + "\n")


@pytest.fixture()
def model_and_data(tmp_path):
    split = synthetic_split(n_docs=60, per_doc=3, dim=16, seed=4)
    write_npy_split(tmp_path / "data" / "test", split)
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=16, hidden_dim=16))
    weights = model.encode(split.doc_emb).csr.data
    model.config.min_weight = float(np.quantile(weights, 1 - 200 / 15000))  # about 200 tokens a vector
    model.save_pretrained(tmp_path / "model")
    return tmp_path, split


def run_eval(tmp_path, backend: str, url: str | None = None) -> dict:
    from lsr.cli.main import main

    argv = ["eval", "--model", str(tmp_path / "model"), "--eval", f"npy:{tmp_path / 'data'}/test",
            "--out", str(tmp_path / backend), "--backend", backend]
    if url:
        argv += ["--url", url, "--index-prefix", "lsr-test-eval"]
    assert main(argv) == 0
    return json.loads((tmp_path / backend / "eval.json").read_text())


def assert_agrees(report: dict, exact: bool) -> None:
    rows, checks = report["results"]["test"], report["backend_checks"]["test"]
    backend = report["backend"]
    for label in ("D2S sparse, expanded queries", "D2S sparse, no-expansion queries"):
        via = rows[f"{label} via {backend}"]
        assert checks[label]["ok"]
        for d in ("t2i", "i2t"):
            for k in ("R@1", "R@5", "R@10"):
                # exact: the expanded rows have no ties; no-expansion queries are often empty on this
                # random model, and the matrix path ranks their all-zero scores by position
                allowed = 0.0 if exact and "expanded" in label else checks[label]["allowed"][d][k]
                assert abs(via[d][k] - rows[label][d][k]) <= allowed + 1e-9, (label, d, k)
    assert rows["D2S sparse, expanded queries"]["t2i"]["R@10"] > 0  # a real ranking, not an empty one


def test_eval_through_the_embedded_backend_is_exact(model_and_data):
    from lsr.eval.metrics import t2i_from_top
    from lsr.eval.trec import read_run

    tmp_path, split = model_and_data
    report = run_eval(tmp_path, "embedded")
    assert_agrees(report, exact=True)
    assert report["backend_checks"]["test"]["D2S sparse, expanded queries"]["max_diff"] == 0
    run = read_run(tmp_path / "embedded" / "runs" / "test.d2s-exp-embedded.t2i.run")  # the backend's own run
    row = {d: i for i, d in enumerate(split.doc_ids)}
    top = np.full((len(split.query_ids), 10), -1)
    for qi, qid in enumerate(split.query_ids):
        ranked = sorted(run.get(qid, {}).items(), key=lambda kv: -kv[1])[:10]
        top[qi, :len(ranked)] = [row[d] for d, _ in ranked]
    via = report["results"]["test"]["D2S sparse, expanded queries via embedded"]["t2i"]
    assert t2i_from_top(top, split.query_doc)["R@1"] == pytest.approx(via["R@1"])


ENGINES = [pytest.param("opensearch", marks=pytest.mark.opensearch),
           pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)]


@pytest.mark.parametrize("engine", ENGINES)
def test_eval_through_opensearch_agrees_within_the_weight_bound(model_and_data, engine, request):
    """OpenSearch (rank_features) and Elasticsearch (sparse_vector): the same 9-bit weight bound."""
    tmp_path, _ = model_and_data
    assert_agrees(run_eval(tmp_path, engine, request.getfixturevalue(f"{engine}_url")), exact=False)


def test_tolerance_counts_near_ties_only():
    scores = np.array([[1.0, 0.999], [0.5, 1.0], [1.0, 0.2]], dtype=np.float32)  # 3 captions x 2 images
    query_doc = np.array([0, 0, 1])
    tight = tolerance(scores, query_doc, 2.0 ** -8)
    assert tight["t2i"]["R@1"] == pytest.approx(100 / 3)  # only caption 0's image ties within the bound
    assert tolerance(scores, query_doc, 0.0)["t2i"]["R@1"] == 0.0
    assert ranked_rows([[]], ["a"]).tolist() == [[-1] * 10]


@pytest.mark.parametrize("mode", [["--hybrid", "min_max:0"], ["--rerank", "dense", "--candidates", "60"]])
def test_eval_scoring_modes_through_the_embedded_backend(model_and_data, mode):
    """Sparse weight 0 leaves only the dense list: the dense teacher's row. Re-ranking every document the
    sparse index returns orders exactly the sparse-matching documents by cosine."""
    from lsr.cli.main import main

    tmp_path, split = model_and_data
    argv = ["eval", "--model", str(tmp_path / "model"), "--eval", f"npy:{tmp_path / 'data'}/test",
            "--out", str(tmp_path / "modes"), "--backend", "embedded", *mode]
    assert main(argv) == 0
    rows = json.loads((tmp_path / "modes" / "eval.json").read_text())["results"]["test"]
    label = next(k for k in rows if "+ " in k)
    dense = rows["dense cosine (teacher)"]
    if mode[0] == "--hybrid":
        assert rows[label]["t2i"] == pytest.approx(dense["t2i"]) and rows[label]["i2t"] == pytest.approx(dense["i2t"])
    else:  # the expected t2i ranking computed here: the sparse-matching documents, ordered by cosine
        model = D2SModel.from_pretrained(tmp_path / "model")
        sparse = model.encode(split.query_emb).dot(model.encode(split.doc_emb))
        cos = split.query_emb @ split.doc_emb.T
        top = np.full((len(split.query_ids), 10), -1)
        for qi in range(len(split.query_ids)):
            found = np.flatnonzero(sparse[qi] > 0)
            ranked = found[np.argsort(-cos[qi, found], kind="stable")][:10]
            top[qi, :ranked.size] = ranked
        from lsr.eval.metrics import t2i_from_top

        expected = t2i_from_top(top, split.query_doc)
        assert rows[label]["t2i"] == pytest.approx(expected)
        assert rows[label]["t2i"]["R@10"] <= dense["t2i"]["R@10"]  # a stage-1 miss stays a miss
    with pytest.raises(SystemExit):
        main(["eval", "--model", str(tmp_path / "model"), "--hybrid", "rrf", "--rerank", "late"])


@pytest.mark.parametrize("engine", ENGINES)
def test_eval_dense_rerank_in_opensearch_equals_the_embedded_rows(model_and_data, engine, request):
    """OpenSearch's rescore (Painless cosineSimilarity over the knn_vector field), or Elasticsearch's
    candidates with their dense_vector ordered by cosine, re-rank every stage-1 document as the embedded
    backend does: the same candidates (all positive sparse scores) and cosines."""
    from lsr.cli.main import main

    tmp_path, _ = model_and_data
    url = request.getfixturevalue(f"{engine}_url")
    rows = {}
    for backend in ("embedded", engine):
        argv = ["eval", "--model", str(tmp_path / "model"), "--eval", f"npy:{tmp_path / 'data'}/test",
                "--out", str(tmp_path / f"rr-{backend}"), "--backend", backend, "--rerank", "dense",
                "--candidates", "60", "--url", url, "--index-prefix", "lsr-test-rerank"]
        assert main(argv) == 0
        rows[backend] = json.loads((tmp_path / f"rr-{backend}" / "eval.json").read_text())["results"]["test"]
    label = "D2S sparse, expanded queries + rerank dense@60 via"
    assert rows[engine][f"{label} {engine}"]["t2i"] == pytest.approx(rows["embedded"][f"{label} embedded"]["t2i"])
    assert rows[engine][f"{label} {engine}"]["i2t"] == pytest.approx(rows["embedded"][f"{label} embedded"]["i2t"])
    if engine == "opensearch":
        from lsr.backends.opensearch.client import connect
    else:
        from lsr.backends.elasticsearch.client import connect
    client = connect(url)
    for name in client.indices.get(index="lsr-test-rerank-*"):  # Elasticsearch refuses wildcard deletes
        client.indices.delete(index=name)
