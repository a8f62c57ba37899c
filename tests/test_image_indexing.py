"""Folder indexing: exact failure reports, idempotent re-runs, changes, pruning, the feature cache, D2S."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from lsr.backends.embedded import EmbeddedIndex  # noqa: E402
from lsr.images import index_image_folder  # noqa: E402
from lsr.sparse import SparseBatch, SparseVector  # noqa: E402
from tests.image_fixtures import BAD, TEST_MAX_PIXELS, make_image_tree  # noqa: E402

RED, GREEN, BLUE = 2417, 2665, 2630  # any three token ids


class ColourEncoder:
    """A cheap SparseImageEncoder: the mean colour's dominant channel becomes one token, weighted by saturation."""

    name = "colour-test"
    dim = 3

    def __init__(self):
        self.calls = 0

    def image_features(self, images, batch_size=32, show_progress=False):
        self.calls += len(images)
        return np.stack([np.asarray(img.convert("RGB"), np.float32).mean(axis=(0, 1)) / 255 for img in images])

    def features_to_sparse(self, features):
        vectors = [SparseVector([(RED, GREEN, BLUE)[int(np.argmax(f))]], [float(f.max() - f.min()) + 0.01]) for f in features]
        return SparseBatch.from_vectors(vectors)

    def encode_images_sparse(self, images, batch_size=32, show_progress=False):
        return self.features_to_sparse(self.image_features(images))

    def encode_query(self, text):
        return SparseVector([{"red": RED, "green": GREEN, "blue": BLUE}[text]], [1.0])


def _run(root, encoder, index, tmp_path, **kw):
    return index_image_folder(root, encoder, index, manifest_path=tmp_path / "state" / "manifest.parquet",
                              cache_dir=tmp_path / "state" / "cache", batch_size=3, max_pixels=TEST_MAX_PIXELS, **kw)


def _top(index, encoder, word):
    return index.search(encoder.encode_query(word), k=1)[0].id


def test_index_rerun_change_and_prune(tmp_path):
    root = tmp_path / "photos"
    good = make_image_tree(root)
    enc, index = ColourEncoder(), EmbeddedIndex()

    report = _run(root, enc, index, tmp_path)
    assert set(report.failed) == BAD  # exactly the bad files, each with a reason
    assert "too large" in report.failed["bad/huge.png"] and "empty" in report.failed["bad/zero.jpg"]
    assert report.indexed == len(good) == index.count() == enc.calls
    meta = index.metadata("nested/deeper/rotated.jpg")
    assert (meta["width"], meta["height"]) == (20, 40)
    assert meta["path"] == str(root / "nested/deeper/rotated.jpg")
    assert meta["file_size"] == (root / "nested/deeper/rotated.jpg").stat().st_size
    assert _top(index, enc, "red") == "red.png"
    assert _top(index, enc, "blue") == "nested/deeper/blue.bmp"

    again = _run(root, enc, index, tmp_path)  # nothing new: nothing encoded or re-indexed
    assert (again.indexed, again.unchanged, again.encoded) == (0, len(good), 0)
    assert set(again.failed) == BAD and index.count() == len(good)

    Image.new("RGB", (40, 30), (10, 230, 10)).save(root / "red.png")  # red.png turns green
    st = (root / "red.png").stat()
    os.utime(root / "red.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = _run(root, enc, index, tmp_path)
    assert (changed.indexed, changed.encoded, changed.unchanged) == (1, 1, len(good) - 1)
    assert index.count() == len(good)  # replaced, not duplicated
    assert "red.png" not in [h.id for h in index.search(enc.encode_query("red"), k=20)]
    assert "red.png" in [h.id for h in index.search(enc.encode_query("green"), k=20)]

    (root / "nested/deeper/blue.bmp").unlink()
    kept = _run(root, enc, index, tmp_path)  # without prune the document stays
    assert kept.pruned == 0 and index.count() == len(good)
    pruned = _run(root, enc, index, tmp_path, prune=True)
    assert pruned.pruned == 1 and index.count() == len(good) - 1
    assert "nested/deeper/blue.bmp" not in index


def test_cache_avoids_re_encoding_and_a_corrupted_file_is_removed(tmp_path):
    root = tmp_path / "photos"
    good = make_image_tree(root)
    enc = ColourEncoder()
    _run(root, enc, EmbeddedIndex(), tmp_path)
    assert enc.calls == len(good)

    (tmp_path / "state" / "manifest.parquet").unlink()  # a fresh index: features come from the cache
    fresh, enc2 = EmbeddedIndex(), ColourEncoder()
    report = _run(root, enc2, fresh, tmp_path)
    assert (report.indexed, report.encoded, report.cache_hits, enc2.calls) == (len(good), 0, len(good), 0)
    assert fresh.metadata("nested/deeper/rotated.jpg")["height"] == 40  # sizes come from the cache too

    (root / "red.png").write_bytes(b"garbage")  # a good file turns bad: its old vector must go
    report = _run(root, enc2, fresh, tmp_path)
    assert set(report.failed) == BAD | {"red.png"}
    assert "red.png" not in fresh and fresh.count() == len(good) - 1


def test_manifest_without_backend_documents_reindexes(tmp_path):
    root = tmp_path / "photos"
    good = make_image_tree(root)
    _run(root, ColourEncoder(), EmbeddedIndex(), tmp_path)
    empty = EmbeddedIndex()  # e.g. the index directory was deleted but the manifest kept
    assert _run(root, ColourEncoder(), empty, tmp_path).indexed == len(good) == empty.count()


def test_commit_runs_before_the_manifest_is_written(tmp_path):
    root = tmp_path / "photos"
    make_image_tree(root)
    manifest = tmp_path / "state" / "manifest.parquet"
    seen = []
    _run(root, ColourEncoder(), EmbeddedIndex(), tmp_path, commit=lambda: seen.append(manifest.exists()))
    assert seen == [False] and manifest.exists()


def test_dense_encoder_needs_a_matching_d2s_model(tmp_path):
    from lsr.d2s.model import D2SConfig, D2SModel
    from lsr.images.vectorise import ImageVectoriser

    class Dense:
        name, dim = "dense-test", 8

        def encode_images(self, images, batch_size=32, show_progress=False): ...
        def encode_texts(self, texts, batch_size=128, show_progress=False): ...
        def caption_token_ids(self, texts): ...

    with pytest.raises(ValueError, match="pass a trained D2S model"):
        ImageVectoriser(Dense())
    with pytest.raises(ValueError, match="expects 16-d inputs"):
        ImageVectoriser(Dense(), D2SModel(D2SConfig(dense_dim=16, hidden_dim=8)))
    with pytest.raises(ValueError, match="do not pass a D2S model"):
        ImageVectoriser(ColourEncoder(), D2SModel(D2SConfig(dense_dim=3, hidden_dim=8)))
