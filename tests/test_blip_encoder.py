"""BLIP ITC encoder: a tiny random BlipForImageTextRetrieval saved to disk and loaded back offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import needs_minilm

pytest.importorskip("PIL")


@pytest.fixture(scope="module")
def tiny_blip_dir(tmp_path_factory):
    """A tiny random BLIP retrieval model + PIL image processor + the local bert-base-uncased tokenizer."""
    from transformers import AutoTokenizer, BlipConfig, BlipForImageTextRetrieval

    from lsr.encoders.blip import pil_image_processor_class
    from lsr.vocab import default_tokenizer_dir

    torch.manual_seed(0)
    config = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=16, initializer_range=0.02),  # default 1e-10: near-constant
        text_config=dict(vocab_size=30524, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, encoder_hidden_size=32),
        projection_dim=24, image_text_hidden_size=24,
    )
    path = tmp_path_factory.mktemp("tiny_blip")
    BlipForImageTextRetrieval(config).eval().save_pretrained(path)
    pil_image_processor_class()(size={"height": 64, "width": 64}).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(default_tokenizer_dir()), local_files_only=True).save_pretrained(path)
    return path


def _images():
    from PIL import Image

    return [Image.new("RGB", (80, 60), c) for c in ("red", "green", "blue")] + [Image.new("L", (30, 50), 128)]


@needs_minilm
def test_blip_offline_shapes_normalised_deterministic(tiny_blip_dir, tmp_path):
    from lsr.encoders.base import ImageTextEncoder
    from lsr.encoders.blip import BlipEncoder

    enc = BlipEncoder(tiny_blip_dir, device="cpu")
    assert isinstance(enc, ImageTextEncoder)
    assert enc.dim == 24
    img = enc.encode_images(_images(), batch_size=3)
    assert img.shape == (4, 24) and img.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(img[0], img[1])  # different pixels, different vectors
    np.testing.assert_array_equal(img, enc.encode_images(_images(), batch_size=3))  # deterministic
    np.testing.assert_allclose(img, enc.encode_images(_images(), batch_size=2), atol=1e-6)  # batching-independent
    path = tmp_path / "red.png"
    _images()[0].save(path)
    np.testing.assert_allclose(enc.encode_images([path])[0], img[0], atol=1e-6)  # a path works like an image

    texts = ["a red square", "a green field with a much longer caption than the first one"]
    txt = enc.encode_texts(texts, batch_size=1)
    assert txt.shape == (2, 24)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(enc.encode_texts(texts), txt, atol=1e-6)  # padding-independent
    sims = img @ txt.T  # one shared space: cosine similarities in [-1, 1]
    assert sims.shape == (4, 2) and np.all(np.abs(sims) <= 1 + 1e-5)

    ids = enc.caption_token_ids(["a red square"])
    assert [enc.vocab.token(int(i)) for i in ids[0]] == sorted(["a", "red", "square"], key=enc.vocab.id)


def test_blip_refuses_missing_dir_without_download(tmp_path):
    from lsr.encoders.blip import BlipEncoder

    with pytest.raises(FileNotFoundError, match="allow_download=True"):
        BlipEncoder(tmp_path / "nope")


@needs_minilm
def test_blip_rejects_bad_inputs(tiny_blip_dir):
    from lsr.encoders.blip import BlipEncoder

    enc = BlipEncoder(tiny_blip_dir, device="cpu")
    with pytest.raises(ValueError, match="Text #1"):
        enc.encode_texts(["fine", "  "])
    with pytest.raises(TypeError, match="Image #0"):
        enc.encode_images([42])


@needs_minilm
def test_blip_folder_indexing_through_d2s(tiny_blip_dir, tmp_path):
    """Dense encoder + D2S: indexed once, unchanged on re-run, re-indexed from the cache for a new D2S model."""
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.d2s.model import D2SConfig, D2SModel
    from lsr.encoders.blip import BlipEncoder
    from lsr.images import index_image_folder
    from lsr.search import SparseSearcher
    from tests.image_fixtures import BAD, TEST_MAX_PIXELS, make_image_tree

    root = tmp_path / "photos"
    good = make_image_tree(root)
    enc = BlipEncoder(tiny_blip_dir, device="cpu")
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=enc.dim, hidden_dim=16))
    index = EmbeddedIndex()
    kw = dict(manifest_path=tmp_path / "m.parquet", cache_dir=tmp_path / "cache", max_pixels=TEST_MAX_PIXELS,
              batch_size=4)
    first = index_image_folder(root, enc, index, model, **kw)
    assert set(first.failed) == BAD and first.indexed == len(good) == index.count()
    assert index_image_folder(root, enc, index, model, **kw).unchanged == len(good)

    torch.manual_seed(1)
    other = D2SModel(D2SConfig(dense_dim=enc.dim, hidden_dim=16))
    swapped = index_image_folder(root, enc, index, other, **kw)
    assert (swapped.indexed, swapped.encoded, swapped.cache_hits) == (len(good), 0, len(good))
    from lsr.encoders.sparse import D2SEncoder

    hits = SparseSearcher(index, D2SEncoder(other, enc)).search("a red square", k=3)
    assert len(hits) == 3 and hits[0].metadata["encoder"] == enc.name


def test_lsr_encode_writes_the_d2s_layout_resumes_and_trains(tiny_blip_dir, tmp_path, capsys):
    """Photos + captions -> `lsr encode` (tiny random BLIP) -> the D2S layout -> `lsr train --data d2s:DIR`."""
    import json
    import shutil
    from pathlib import Path

    import pyarrow.parquet as pq
    skimage_data = pytest.importorskip("skimage.data")

    from lsr.cli.main import main
    from lsr.data.pairs import load_d2s_parquet

    photos = tmp_path / "photos"
    photos.mkdir()
    names = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "horse.png", "camera.png"]
    for name in names:
        shutil.copy(Path(skimage_data.__file__).parent / name, photos / name)
    (photos / "broken.jpg").write_bytes(b"not an image")
    words = {"chelsea.png": "a cat", "coffee.png": "a cup of coffee", "rocket.jpg": "a rocket launch",
             "astronaut.png": "an astronaut", "horse.png": "a horse", "camera.png": "a man with a camera"}
    splits = {"train": names[:4] + ["broken.jpg"], "val": names[4:5], "test": names[5:]}
    out = tmp_path / "embs"
    for split, members in splits.items():
        tsv = tmp_path / f"{split}.tsv"
        tsv.write_text("".join(f"{n}\t{words.get(n, 'x')} photo {k}\n" for n in members for k in range(2)))
    assert main(["encode", "--encoder", "blip", "--encoder-path", str(tiny_blip_dir), "--images", str(photos),
                 "--captions", str(tmp_path / "train.tsv"), "--split", "train", "--out", str(out)]) == 0
    args = ["encode", "--encoder", "blip", "--encoder-path", str(tiny_blip_dir), "--images", str(photos),
            "--captions", *(str(tmp_path / f"{s}.tsv") for s in splits), "--split", *splits, "--out", str(out),
            "--batch-size", "2"]
    assert main(args) == 0  # train was done already: only val and test are encoded
    printed = capsys.readouterr().out
    assert "failed broken.jpg" in printed
    assert "4 images and 8 captions encoded now (train)" in printed and "0 images and 0 captions encoded now (train)" \
        in printed
    assert main(args) == 0 and capsys.readouterr().out.count("0 images and 0 captions encoded now") == 3
    assert {p.name for p in out.iterdir()} >= {"img_embs.parquet", "text_embs.parquet", "img_embs_pre.parquet",
                                               "text_embs_pre.parquet", "dataset_meta.json"}
    assert pq.read_table(out / "img_embs.parquet").num_rows == 6 and pq.read_table(out / "text_embs.parquet").num_rows == 12
    meta = json.loads((out / "dataset_meta.json").read_text())
    assert sorted(i["split"] for i in meta["images"]) == ["test", "train", "train", "train", "train", "val"]
    train = load_d2s_parquet(out, "train")
    assert train.doc_emb.shape == (4, 24) and len(train.query_ids) == 8
    pre = pq.read_table(out / "img_embs_pre.parquet").column("emb").to_pylist()
    assert len(pre[0]) == 32  # the vision hidden size: the pre-projection [CLS]
    assert main(["train", "--data", f"d2s:{out}", "--dev", f"d2s:{out}/val", "--eval", f"d2s:{out}/test",
                 "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "4", "--init", "random",
                 "--no-procrustes", "--no-baselines", "--max-flops", "0"]) == 0
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
