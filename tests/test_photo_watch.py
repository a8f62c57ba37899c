"""`lsr index-images --watch`: moved files keep their vectors, and a watcher killed at random moments
(SIGKILL, mid-batch) and started again leaves the index and the manifest in agreement with the folder:
nothing lost, nothing twice. Also the time from a file appearing to it being searchable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from lsr.images import index_image_folder  # noqa: E402
from tests.test_image_indexing import ColourEncoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WORKER = r'''
import sys, time, types
sys.path.insert(0, {root!r})
from pathlib import Path
from lsr.app.folders import FolderJob, FolderOptions
from lsr.app.open import open_index
from lsr.app.specs import NewIndex
from lsr.app.watch import WatchOptions, watch
from tests.test_image_indexing import ColourEncoder

class Slow(ColourEncoder):
    def image_features(self, images, batch_size=32, show_progress=False):
        print("encoding", flush=True)  # the test kills here: mid-batch, other batches written, none committed
        time.sleep(0.02 * len(images))
        return super().image_features(images, batch_size, show_progress)

folder, index_dir, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
index = open_index(str(index_dir), create=True, new=NewIndex(vocab_size=30522))
job = FolderJob(folder, index, types.SimpleNamespace(encoder=Slow(), model=None), index_dir,
                FolderOptions(batch_size=4, prune=True), {{}})
print("ready", flush=True)
watch(job, WatchOptions(interval=0.05, settle_s=0.0, rounds=rounds or None),
      on_round=lambda report, took: print(report.summary(), flush=True))
index.close()
'''


def _photo(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)).save(path)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.png")}


def test_a_moved_file_keeps_its_vector_without_encoding(tmp_path):
    from lsr.backends.embedded import EmbeddedIndex

    folder = tmp_path / "photos"
    for i in range(5):
        _photo(folder / f"a/{i}.png", i)
    enc, index = ColourEncoder(), EmbeddedIndex()
    run = lambda: index_image_folder(folder, enc, index, manifest_path=tmp_path / "m.parquet",  # noqa: E731
                                     cache_dir=None, prune=True)
    run()
    before, calls = index.get("a/3.png"), enc.calls
    (folder / "b").mkdir()
    os.rename(folder / "a/3.png", folder / "b/moved.png")
    report = run()
    assert report.renamed == 1 and report.encoded == 0 and enc.calls == calls
    assert "a/3.png" not in index and "b/moved.png" in index
    after = index.get("b/moved.png")
    assert np.array_equal(after.ids, before.ids) and np.allclose(after.weights, before.weights)
    assert index.metadata("b/moved.png")["path"] == str((folder / "b/moved.png").absolute())
    assert index.metadata("b/moved.png")["phash"] and index.count() == 5


def _start(folder: Path, index_dir: Path, script: Path, rounds: int = 0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(index_dir), str(rounds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def test_killed_watcher_restarts_with_nothing_lost_and_nothing_twice(tmp_path):
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.images.manifest import Manifest

    folder, index_dir = tmp_path / "photos", tmp_path / "index"
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT)))
    rng = random.Random(7)
    seed = 0
    for _ in range(40):
        _photo(folder / f"d{seed % 4}/{seed}.png", seed)
        seed += 1
    kills, logs = 0, []
    for _ in range(4):
        proc = _start(folder, index_dir, script)
        time.sleep(rng.uniform(0.3, 1.2))
        for _ in range(8):  # changes while it runs: new, deleted, moved files
            existing = sorted(_files(folder))
            action = rng.choice(["new", "new", "delete", "move"])
            if action == "new" or not existing:
                _photo(folder / f"d{seed % 4}/{seed}.png", seed)
                seed += 1
            elif action == "delete":
                (folder / rng.choice(existing)).unlink()
            else:
                src = rng.choice(existing)
                dest = folder / f"moved/{seed}-{Path(src).name}"
                dest.parent.mkdir(exist_ok=True)
                os.rename(folder / src, dest)
                seed += 1
            time.sleep(rng.uniform(0.0, 0.15))
        _photo(folder / f"d{seed % 4}/{seed}.png", seed)  # at least one file to encode
        seed += 1
        seen = []
        while (line := proc.stdout.readline()) and line.strip() != "encoding":
            seen.append(line)
        if rng.random() < 0.5:  # half the kills mid-batch, half a moment later (maybe mid-commit)
            time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        logs.append("".join(seen) + proc.stdout.read())
        kills += 1
    final = _start(folder, index_dir, script, rounds=1)
    assert final.wait(timeout=120) == 0, final.stderr.read()
    logs.append(final.stdout.read())
    recovered = sum("recovered" in log for log in logs[1:])
    print("restarts that finished a killed run's work:", recovered)
    assert recovered >= 1  # the journal was there to be used
    index = EmbeddedIndex.load(index_dir)
    files = _files(folder)
    held = {i for i in files if i in index}
    assert held == files, f"lost: {sorted(files - held)}"
    assert index.count() == len(files), "a document the folder no longer has is still indexed (twice or stale)"
    assert set(Manifest.load(index_dir / "images-manifest.parquet").entries) == files
    assert not (index_dir / "images-manifest.parquet.journal").exists()
    for doc_id in files:
        assert index.metadata(doc_id)["path"] == str((folder / doc_id).absolute())
    assert kills == 4


def test_a_new_file_is_searchable_within_a_round(tmp_path):
    """Time from a file appearing to it being in the index, with a watcher polling every 0.2 s."""
    from lsr.app.folders import FolderJob, FolderOptions
    from lsr.app.watch import WatchOptions, watch
    from lsr.backends.embedded import EmbeddedIndex

    folder = tmp_path / "photos"
    _photo(folder / "first.png", 0)
    index = EmbeddedIndex(directory=tmp_path / "index")
    job = FolderJob(folder, index, type("S", (), {"encoder": ColourEncoder(), "model": None})(), tmp_path / "index",
                    FolderOptions(prune=True), {})
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(job, WatchOptions(interval=0.2, settle_s=0.0)), kwargs={"stop": stop})
    thread.start()
    try:
        delays = []
        for n in range(3):
            time.sleep(0.3)
            started = time.perf_counter()
            _photo(folder / f"new{n}.png", n + 1)
            while f"new{n}.png" not in index:
                assert time.perf_counter() - started < 10
                time.sleep(0.01)
            delays.append(time.perf_counter() - started)
    finally:
        stop.set()
        thread.join()
    print(f"new file -> indexed: {', '.join(f'{d:.2f}' for d in delays)} s (poll interval 0.2 s)")
    assert max(delays) < 5
