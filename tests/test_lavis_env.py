"""ALBEF and BLIP through LAVIS for real, in the encoding environment of `scripts/lavis-env.sh` (LAVIS pins
transformers 4.26 and numpy < 2, so it cannot share the main environment): build randomly initialised
ALBEF and BLIP offline, save them as checkpoints, `lsr encode` scikit-image's sample photos and captions
into the D2S layout (train / val / test), then train and evaluate a tiny D2S model on the ALBEF vectors
in the main environment. CI builds the environment before the tests (`.ci/run`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lsr.project import project_root

pytestmark = pytest.mark.slow
skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (real sample photos)")

PHOTOS = {"chelsea.png": ["a tabby cat looking at the camera", "a cat with green eyes"],
          "coffee.png": ["a cup of coffee on a saucer", "coffee in a white cup"],
          "rocket.jpg": ["a rocket on the launch pad", "a space shuttle before launch"],
          "astronaut.png": ["an astronaut in a space suit", "a woman astronaut smiling"],
          "horse.png": ["a silhouette of a horse", "a black horse drawing"],
          "motorcycle_left.png": ["a red motorcycle", "a motorbike in a room"],
          "camera.png": ["a man with a camera on a tripod", "a photographer outside"]}
SPLITS = {"train": ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png"], "val": ["horse.png"],
          "test": ["motorcycle_left.png", "camera.png"]}


@pytest.fixture(scope="module")
def lavis_python() -> Path:
    env = Path(os.environ.get("LSR_LAVIS_ENV", Path.home() / ".cache" / "lsr" / "lavis-env"))
    python = env / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"No LAVIS environment at {env}: build it with `bash scripts/lavis-env.sh` (CI does).",
                    pytrace=False)
    return python


def _run(python: Path, *args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(project_root()), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_albef_and_blip_encode_into_the_d2s_layout_and_train(lavis_python, tmp_path):
    import json

    import pyarrow.parquet as pq

    from lsr.cli.main import main

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in PHOTOS:
        shutil.copy(Path(skimage_data.__file__).parent / name, photos / name)
    for split, names in SPLITS.items():
        (tmp_path / f"{split}.tsv").write_text("".join(f"{n}\t{c}\n" for n in names for c in PHOTOS[n]))
    versions = _run(lavis_python, "-c", "import transformers, numpy, lavis; print(transformers.__version__, "
                                        "numpy.__version__)", cwd=tmp_path).split()
    assert versions[0].startswith("4.26") and versions[1].startswith("1.")  # LAVIS's pins, not the main env's

    for family in ("albef", "blip"):
        _run(lavis_python, "-c", f"from lsr.encoders.lavis import save_random_checkpoint; "
                                 f"save_random_checkpoint('{family}', '{family}.pth')", cwd=tmp_path)
        splits = list(SPLITS) if family == "albef" else ["train"]
        out = _run(lavis_python, "-m", "lsr.cli", "encode", "--encoder", f"lavis-{family}", "--encoder-path",
                   f"{family}.pth", "--images", str(photos), "--captions", *(f"{s}.tsv" for s in splits),
                   "--split", *splits, "--out", f"embs-{family}", "--batch-size", "4", cwd=tmp_path)
        assert "0 failed" in out
        layout = tmp_path / f"embs-{family}"
        images = pq.read_table(layout / "img_embs.parquet")
        assert images.num_rows == sum(len(SPLITS[s]) for s in splits)
        assert len(images.column("emb")[0]) == 256  # ITC projection
        assert len(pq.read_table(layout / "img_embs_pre.parquet").column("emb")[0]) == 768  # [CLS] before it
        assert len(pq.read_table(layout / "text_embs_pre.parquet").column("emb")[0]) == 768
        (tmp_path / f"{family}.pth").unlink()  # 0.8-0.9 GB each

    layout = tmp_path / "embs-albef"
    meta = json.loads((layout / "dataset_meta.json").read_text())
    assert sorted(i["split"] for i in meta["images"]) == sorted(s for s, n in SPLITS.items() for _ in n)
    assert main(["train", "--data", f"d2s:{layout}", "--dev", f"d2s:{layout}/val", "--eval", f"d2s:{layout}/test",
                 "--out", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "4", "--init", "random",
                 "--no-procrustes", "--no-baselines", "--max-flops", "0"]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    rows = report["results"]["embs-albef-test"]
    assert {"dense cosine (teacher)", "D2S sparse, expanded queries"} <= set(rows)
    assert 0 <= rows["D2S sparse, expanded queries"]["t2i"]["R@10"] <= 100
    assert report["train"]["pairs"] == 8 and report["train"]["images"] == 4
