"""The lab lives in `experiments/` (run from the checkout, never installed): its drivers parse the commands that
`results/reproduce.yaml` names, and the installed package does not depend on them."""

from __future__ import annotations

import ast
import importlib
import shlex
import subprocess
import sys

from conftest import needs_minilm
from lsr.project import project_root
from lsr.reproduce import command_argv, load_rows


def experiment_commands() -> list[list[str]]:
    return [shlex.split(r["command"]) for r in load_rows()
            if r.get("command") and r["command"].startswith("python -m experiments.")]


def test_every_reproduce_command_of_an_experiment_parses():
    commands = experiment_commands()
    assert len(commands) >= 60  # the rerank, hybrid, sets and inference-free tables
    for argv in commands:
        module = importlib.import_module(argv[2])
        module.build_parser().parse_args(argv[3:])  # SystemExit on an unknown flag or table


def test_reproduce_runs_python_commands_with_this_interpreter():
    assert command_argv("python -m experiments.modes sets --model m")[:3] == [sys.executable, "-m", "experiments.modes"]
    assert command_argv("lsr eval --model m")[0] == "lsr"


def test_the_package_does_not_import_the_lab():
    root = project_root()
    offenders = []
    for path in sorted((root / "lsr").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(root)}: {n}" for n in names if n.split(".")[0] == "experiments"]
    assert offenders == []
    for gone in ("lsr/experiment.py", "lsr/sweep.py", "lsr/eval/modes.py", "lsr/eval/sets_experiment.py",
                 "lsr/eval/inference_free.py", "lsr/eval/published.py", "lsr/eval/published.yaml"):
        assert not (root / gone).exists(), f"{gone} belongs in experiments/"


def test_the_lab_commands_left_the_cli():
    import argparse

    from lsr.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert "train" in sub.choices and not {"modes", "sweep"} & set(sub.choices)


def test_a_driver_runs_from_the_checkout_root():
    done = subprocess.run([sys.executable, "-m", "experiments.published", "--help"], cwd=project_root(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "REPORT" in done.stdout


def test_published_tables_for_a_caption_proxy_report():
    from experiments.published import report_tables

    row = {"t2i": {"R@1": 50.0, "R@5": 80.0, "R@10": 88.0}, "i2t": {"R@1": 60.0, "R@5": 85.0, "R@10": 91.0}}
    rows = {"dense cosine (teacher)": row, "D2S sparse, expanded queries": row}
    report = {"label": "caption proxy", "results": {"f30k-test": rows, "f30k-dev": rows}}
    tables = report_tables(report)
    assert len(tables) == 1 and "Flickr30k 1k test" in tables[0] and "NOT reproductions" in tables[0]
    assert report_tables({**report, "label": "d2s:/data"}) == []


def _collection(folder, n_images: int = 40, captions: int = 5, dim: int = 8) -> None:
    """A tiny collection in the public D2S parquet layout (train / val / test images, `captions` each)."""
    import json

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    words = ["dog", "cat", "man", "woman", "bike", "car", "boat", "tree", "beach", "snow", "red", "blue"]
    rng = np.random.default_rng(0)
    images, img_rows, txt_rows, sid = [], [], [], 0
    for i in range(n_images):
        base, chosen, sentences = rng.normal(size=dim), rng.choice(words, size=3, replace=False), []
        for _ in range(captions):
            sentences.append({"sentid": sid, "raw": "a " + " ".join(rng.permutation(chosen))})
            txt_rows.append((sid, (base + 0.2 * rng.normal(size=dim)).tolist()))
            sid += 1
        split = "train" if i < n_images * 0.6 else ("val" if i < n_images * 0.8 else "test")
        images.append({"imgid": i, "split": split, "sentences": sentences})
        img_rows.append((i, base.tolist()))
    for name, rows in (("img_embs.parquet", img_rows), ("text_embs.parquet", txt_rows)):
        pq.write_table(pa.table({"id": [r[0] for r in rows], "emb": [r[1] for r in rows]}), folder / name)
    (folder / "dataset_meta.json").write_text(json.dumps({"images": images}))


@needs_minilm
def test_the_mode_tables_run_on_a_small_trained_model(tmp_path, capsys):
    """`python -m experiments.modes rerank|hybrid|sets` end to end on a tiny D2S-layout collection (5 captions per
    image: the sets table needs 4) and a model trained for one epoch."""
    import json

    from experiments.modes import main as modes_main
    from lsr.cli.main import main

    data = tmp_path / "embs"
    data.mkdir()
    _collection(data)
    model = tmp_path / "run" / "model"
    assert main(["train", "--data", f"d2s:{data}", "--dev", f"d2s:{data}/val", "--eval", f"d2s:{data}/test",
                 "--epochs", "1", "--batch-size", "32", "--no-procrustes", "--no-baselines", "--max-flops", "0",
                 "--out", str(model.parent)]) == 0
    common = ["--model", str(model), "--split", f"d2s:{data}/test", "--latency-queries", "3"]
    for table, extra in (("rerank", ["--no-late", "--candidates", "10", "20"]),
                         ("hybrid", ["--dev", f"d2s:{data}/val", "--depth", "10"]), ("sets", [])):
        out = tmp_path / f"{table}.json"
        assert modes_main([table, *common, *extra, "--out", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["rows"] and all(0 <= r["R@1"] <= r["R@10"] <= 100 for r in report["rows"])
    assert "sparse only" in capsys.readouterr().out
