"""`lsr train` on precomputed embeddings in the public D2S parquet layout: one command, end to end."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import needs_minilm
from lsr.cli.main import main

WORDS = ["dog", "cat", "man", "woman", "bike", "car", "boat", "tree", "beach", "snow", "red", "blue"]


def _write(folder, n_images=40, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    images, img_rows, txt_rows, sid = [], [], [], 0
    for i in range(n_images):
        split = "train" if i < 24 else ("val" if i < 32 else "test")
        base = rng.normal(size=dim)
        words = rng.choice(WORDS, size=3, replace=False)
        sentences = []
        for _ in range(3):
            sentences.append({"sentid": sid, "raw": "a " + " ".join(rng.permutation(words))})
            txt_rows.append((sid, (base + 0.2 * rng.normal(size=dim)).tolist()))
            sid += 1
        images.append({"imgid": i, "split": split, "sentences": sentences})
        img_rows.append((i, base.tolist()))
    for name, rows in (("img_embs.parquet", img_rows), ("text_embs.parquet", txt_rows)):
        pq.write_table(pa.table({"id": [r[0] for r in rows], "emb": [r[1] for r in rows]}), folder / name)
    (folder / "dataset_meta.json").write_text(json.dumps({"images": images}))


@pytest.fixture
def data(tmp_path):
    """A tiny collection in the public D2S parquet layout."""
    folder = tmp_path / "blip-embs"
    folder.mkdir()
    _write(folder)
    return folder


@needs_minilm
def test_train_on_d2s_parquet_layout_with_one_command(data, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val", "--eval", f"d2s:{data}/test",
               "--epochs", "2", "--batch-size", "32", "--no-procrustes", "--max-flops", "1e9", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    rows = report["results"]["blip-embs-test"]
    assert set(rows) >= {"dense cosine (teacher)", "D2S sparse, expanded queries", "D2S sparse, no-expansion queries"}
    assert len(report["train"]["history"]) == 2
    # --max-flops also picks the best epoch as pruned to the budget on dev
    assert report["config"]["train"]["select_max_flops"] == 1e9
    assert all(h["val_at_budget"]["reached"] for h in report["train"]["history"])
    assert (out / "model" / "model.safetensors").is_file()
    assert (out / "runs" / "blip-embs-test.d2s-exp.t2i.run").is_file()
    printed = capsys.readouterr().out
    assert "D2S sparse, expanded queries" in printed and "points from dense cosine" in printed

    # static pruning chosen on dev: a budget of 1e9 keeps everything; half the dev FLOPs needs a threshold
    curve = report["static_pruning"]["curve"]
    assert report["static_pruning"]["min_weight"] == 0.0 and curve[0]["min_weight"] == 0.0
    budget = curve[0]["flops"] / 2
    expected = next(p["min_weight"] for p in curve if p["flops"] <= budget)
    assert expected > 0
    assert main(["eval", "--model", str(out / "model"), "--dev", f"d2s:{data}/val", "--eval", f"d2s:{data}/test",
                 "--max-flops", str(budget), "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["min_weight"] == expected


@needs_minilm
def test_sweep_plots_r1_against_flops(data, tmp_path):
    from experiments.sweep import main as sweep_main

    out = tmp_path / "sweep"
    assert sweep_main(["--lambdas", "1e-3", "1", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val",
                 "--epochs", "4", "--batch-size", "16", "--sparsity-warmup", "0", "--lr", "1e-3",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    expanded = {p["lambda"]: p for p in summary["points"] if p["expanded"]}
    assert set(expanded) == {1e-3, 1}
    assert expanded[1]["doc_nnz"] < 0.75 * expanded[1e-3]["doc_nnz"]  # a stronger penalty gives sparser documents
    png = (out / "r1_vs_flops.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@needs_minilm
def test_sweep_over_a_grid_of_training_settings_with_a_flops_budget(data, tmp_path, capsys):
    from experiments.sweep import main as sweep_main

    out = tmp_path / "grid"
    assert sweep_main(["--grid", "objective=d2s,joint", "expansion-decay=0,0.95", "--max-flops", "50",
                 "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val", "--epochs", "2", "--batch-size", "16",
                 "--lr", "1e-3", "--out", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    expanded = [p for p in summary["points"] if p["expanded"]]
    assert [p["setting"] for p in expanded] == [{"objective": o, "expansion_decay": e}
                                                for o in ("d2s", "joint") for e in (0.0, 0.95)]
    for p in expanded:
        assert p["pruned"] is None or p["pruned"]["flops"] <= 50
        assert (out / p["label"].replace(" ", "_").replace("=", "-") / "config.json").is_file()
    assert any(p["pruned"] is not None for p in expanded)
    assert "objective=joint expansion_decay=0.95" in capsys.readouterr().out


def test_sweep_grid_entries_are_checked():
    from experiments.sweep import parse_grid

    assert parse_grid(["joint_w_sparse=0.5,2", "epochs=3"]) == {"joint_w_sparse": [0.5, 2.0], "epochs": [3]}
    with pytest.raises(ValueError, match="not a training setting"):
        parse_grid(["w_sparse=1"])
    with pytest.raises(ValueError, match="FIELD=V1,V2"):
        parse_grid(["epochs"])
    with pytest.raises(ValueError, match="takes int values"):
        parse_grid(["epochs=2.5"])


@needs_minilm
def test_train_keeps_the_model_when_the_flops_budget_is_out_of_reach(data, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val", "--eval", f"d2s:{data}/test",
                 "--epochs", "1", "--batch-size", "32", "--no-procrustes", "--no-baselines", "--max-flops", "1e-9",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["static_pruning"]["reached"] is False and report["static_pruning"]["min_weight"] == 0.0
    assert json.loads((out / "model" / "config.json").read_text())["min_weight"] == 0.0
    assert main(["train", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val", "--eval", f"d2s:{data}/test",
                 "--epochs", "1", "--batch-size", "32", "--no-procrustes", "--no-baselines", "--max-flops", "0",
                 "--out", str(tmp_path / "unpruned")]) == 0
    assert json.loads((tmp_path / "unpruned" / "report.json").read_text())["static_pruning"] is None


@needs_minilm
def test_train_with_a_narrower_hidden_layer(data, tmp_path, capsys, caplog):
    """`--hidden-dim 8`: the tied projector is MiniLM's embeddings in their top-8 principal subspace; the
    saved model keeps the width and reloads."""
    from lsr.d2s.model import D2SModel

    out = tmp_path / "run"
    assert main(["train", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val", "--eval", f"d2s:{data}/test",
                 "--epochs", "1", "--batch-size", "32", "--no-procrustes", "--no-baselines", "--hidden-dim", "8",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["hidden_dim"] == 8
    # the default projector learning rate is set for the full width: the run says so
    assert any("hidden_dim 8 with the projector learning rate" in r.getMessage() for r in caplog.records)
    model = D2SModel.from_pretrained(out / "model")
    assert model.config.hidden_dim == 8 and model.vocab_projector.weight.shape == (30522, 8)
    capsys.readouterr()
    assert main(["train", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val", "--eval", f"d2s:{data}/test",
                 "--epochs", "1", "--hidden-dim", "512", "--out", str(tmp_path / "bad")]) != 0
    assert "hidden_dim must be in 1..384" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "model").exists()
    caplog.clear()  # inference-free training of new documents trains the same projector: the same warning
    assert main(["train", "--query-encoder", "inference-free", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val",
                 "--eval", f"d2s:{data}/test", "--epochs", "1", "--batch-size", "32", "--hidden-dim", "8",
                 "--out", str(tmp_path / "if")]) == 0
    assert any("hidden_dim 8 with the projector learning rate" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("flags, expected", [([], (None, None)), (["--lambda-q", "0.5"], (0.5, None)),
                                             (["--lambda-q", "0.5", "--lambda-d", "0.25"], (0.5, 0.25))])
def test_inference_free_training_from_the_cli_uses_the_python_defaults(monkeypatch, tmp_path, flags, expected):
    """`lsr train --query-encoder inference-free` and `InferenceFreeConfig()` train with the same sparsity weights
    unless a flag sets them (the CLI once used 1e-2 on queries where the dataclass said 1e-3)."""
    import lsr.app.training
    from lsr.d2s.inference_free import InferenceFreeConfig

    seen = {}

    def fake_run(cfg, documents, if_cfg, show_progress=True):
        seen["cfg"] = if_cfg
        return {"best_epoch": 1, "documents": None, "documents_trained": False, "results": {}}

    monkeypatch.setattr(lsr.app.training, "run_inference_free", fake_run)
    assert main(["train", "--query-encoder", "inference-free", "--out", str(tmp_path / "if"), *flags]) == 0
    defaults = (InferenceFreeConfig().lambda_q, InferenceFreeConfig().lambda_d)  # None below: the dataclass's
    want = tuple(default if value is None else value for value, default in zip(expected, defaults))
    assert (seen["cfg"].lambda_q, seen["cfg"].lambda_d) == want
