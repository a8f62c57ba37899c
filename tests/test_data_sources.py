import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lsr.data.pairs import load_d2s_parquet, load_npy_folder
from lsr.data.sources import load_pairs

CAPTIONS = {
    "train": [["a dog runs on grass", "a brown dog running"], ["a man rides a bike", "cyclist on a road"]],
    "test": [["two cats sleep on a sofa", "cats on a couch"]],
}


def _write_d2s_layout(folder, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    images, img_rows, txt_rows, sent_id, img_id = [], [], [], 0, 0
    for split, groups in CAPTIONS.items():
        for caps in groups:
            sentences = []
            for c in caps:
                sentences.append({"sentid": sent_id, "raw": c})
                txt_rows.append((sent_id, rng.normal(size=dim).tolist()))
                sent_id += 1
            images.append({"imgid": img_id, "split": split, "sentences": sentences})
            img_rows.append((img_id, rng.normal(size=dim).tolist()))
            img_id += 1
    for name, rows in (("img_embs.parquet", img_rows), ("text_embs.parquet", txt_rows)):
        pq.write_table(pa.table({"id": [r[0] for r in rows], "emb": [r[1] for r in rows]}), folder / name)
    (folder / "dataset_meta.json").write_text(json.dumps({"images": images}))


def test_d2s_parquet_layout(tmp_path, vocab):
    _write_d2s_layout(tmp_path)
    train = load_d2s_parquet(tmp_path, "train", vocab)
    assert train.doc_ids == ["0", "1"] and len(train.query_ids) == 4
    assert train.query_doc.tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(np.linalg.norm(train.query_emb, axis=1), 1.0, rtol=1e-5)
    assert vocab.id("dog") in train.query_tokens[0]
    test = load_pairs(f"d2s:{tmp_path}", "test", vocab=vocab)
    assert test.doc_ids == ["2"] and test.query_texts == CAPTIONS["test"][0]
    assert test.qrels_i2t() == {"2": {"4": 1, "5": 1}}


def test_d2s_layout_missing_rows_are_named(tmp_path, vocab):
    _write_d2s_layout(tmp_path)
    pq.write_table(pa.table({"id": [0], "emb": [[0.0] * 6]}), tmp_path / "img_embs.parquet")
    with pytest.raises(ValueError, match="Image 1 .* no row"):
        load_d2s_parquet(tmp_path, "train", vocab)


def test_npy_layout_and_zero_vectors_rejected(tmp_path, vocab):
    folder = tmp_path / "test"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "image_emb.npy", rng.normal(size=(2, 4)).astype(np.float32))
    (folder / "image_ids.txt").write_text("a\nb\n")
    text = rng.normal(size=(3, 4)).astype(np.float32)
    np.save(folder / "text_emb.npy", text)
    (folder / "text_ids.txt").write_text("t0\nt1\nt2\n")
    (folder / "text_image_ids.txt").write_text("a\nb\nb\n")
    (folder / "texts.txt").write_text("red car\nblue boat\nboat on water\n")
    split = load_pairs(f"npy:{tmp_path}", "test", vocab=vocab)
    assert split.query_doc.tolist() == [0, 1, 1]
    text[1] = 0
    np.save(folder / "text_emb.npy", text)
    with pytest.raises(ValueError, match=r"rows \[1\] are zero"):
        load_npy_folder(folder, vocab)


def test_unknown_source_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown data source"):
        load_pairs("s3:bucket", "train")
