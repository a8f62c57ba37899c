"""Readers of precomputed dense pairs (e.g. real BLIP/ALBEF embeddings).

Two layouts:
- the public D2S layout: `img_embs.parquet` and `text_embs.parquet` (columns `id`, `emb`) plus a
  Karpathy-format `dataset_meta.json` (images[].imgid, split, sentences[].sentid / raw);
- plain numpy: a folder with `image_emb.npy`, `image_ids.txt`, `text_emb.npy`, `text_ids.txt`,
  `text_image_ids.txt` (the image id of each caption) and `texts.txt` (one caption per line).
Caption token ids (for no-expansion) come from the vocabulary's tokenizer on the raw captions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lsr.data.split import PairedSplit
from lsr.errors import InvalidInputError, MissingFileError
from lsr.vectors import l2_normalise
from lsr.vocab import Vocabulary

KARPATHY_SPLITS = {"train": ("train", "restval"), "val": ("val",), "dev": ("val",), "test": ("test",)}


def _read_embedding_table(path: Path) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise MissingFileError(f"{path} not found; the D2S layout needs img_embs.parquet and text_embs.parquet.")
    table = pq.read_table(path, columns=["id", "emb"])
    ids = [str(x) for x in table.column("id").to_pylist()]
    emb = np.asarray(table.column("emb").to_pylist(), dtype=np.float32)
    if emb.ndim != 2:
        raise InvalidInputError(f"{path}: column 'emb' must hold equal-length vectors.")
    return ids, emb


def load_d2s_parquet(folder: str | Path, split: str, vocab: Vocabulary | None = None,
                     normalise: bool = True) -> PairedSplit:
    """One split ("train", "dev"/"val" or "test") of a folder in the public D2S embedding layout."""
    folder = Path(folder)
    if split not in KARPATHY_SPLITS:
        raise InvalidInputError(f"Unknown split {split!r}; choose one of {sorted(KARPATHY_SPLITS)}.")
    meta_path = folder / "dataset_meta.json"
    if not meta_path.is_file():
        raise MissingFileError(f"{meta_path} not found; the D2S layout needs a Karpathy-format dataset_meta.json.")
    meta = json.loads(meta_path.read_text())
    img_ids, img_emb = _read_embedding_table(folder / "img_embs.parquet")
    txt_ids, txt_emb = _read_embedding_table(folder / "text_embs.parquet")
    img_row = {i: r for r, i in enumerate(img_ids)}
    txt_row = {i: r for r, i in enumerate(txt_ids)}
    doc_ids, doc_rows, q_ids, q_rows, q_doc, q_texts = [], [], [], [], [], []
    for image in meta["images"]:
        if image.get("split") not in KARPATHY_SPLITS[split]:
            continue
        image_id = str(image["imgid"])
        if image_id not in img_row:
            raise InvalidInputError(f"Image {image_id} of dataset_meta.json has no row in img_embs.parquet.")
        doc_index = len(doc_ids)
        doc_ids.append(image_id)
        doc_rows.append(img_row[image_id])
        for sent in image["sentences"]:
            sent_id = str(sent["sentid"])
            if sent_id not in txt_row:
                raise InvalidInputError(f"Caption {sent_id} of dataset_meta.json has no row in text_embs.parquet.")
            q_ids.append(sent_id)
            q_rows.append(txt_row[sent_id])
            q_doc.append(doc_index)
            q_texts.append(sent["raw"])
    if not doc_ids:
        raise InvalidInputError(f"No images of split {split!r} in {meta_path}.")
    return _build(f"{folder.name}-{split}", doc_ids, img_emb[doc_rows], q_ids, txt_emb[q_rows], q_doc, q_texts,
                  vocab, normalise)


def load_npy_folder(folder: str | Path, vocab: Vocabulary | None = None, normalise: bool = True) -> PairedSplit:
    """A split stored as plain .npy arrays and text files (see the module docstring)."""
    folder = Path(folder)
    names = ["image_emb.npy", "image_ids.txt", "text_emb.npy", "text_ids.txt", "text_image_ids.txt", "texts.txt"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise MissingFileError(f"{folder} lacks {missing}; see lsr.data.pairs for the .npy layout.")

    def lines(name: str) -> list[str]:
        return (folder / name).read_text(encoding="utf-8").splitlines()

    doc_ids, q_ids, q_img, q_texts = lines("image_ids.txt"), lines("text_ids.txt"), lines("text_image_ids.txt"), \
        lines("texts.txt")
    doc_row = {d: i for i, d in enumerate(doc_ids)}
    unknown = [i for i in q_img if i not in doc_row]
    if unknown:
        raise InvalidInputError(f"{folder}/text_image_ids.txt names images not in image_ids.txt, e.g. {unknown[:3]}.")
    return _build(folder.name, doc_ids, np.load(folder / "image_emb.npy", allow_pickle=False), q_ids,
                  np.load(folder / "text_emb.npy", allow_pickle=False), [doc_row[i] for i in q_img], q_texts,
                  vocab, normalise)


def _build(name, doc_ids, doc_emb, q_ids, q_emb, q_doc, q_texts, vocab, normalise) -> PairedSplit:
    vocab = vocab or Vocabulary()
    if normalise:
        doc_emb, q_emb = l2_normalise(doc_emb, f"{name} image vectors"), l2_normalise(q_emb, f"{name} text vectors")
    return PairedSplit(name=name, doc_ids=list(doc_ids), doc_emb=doc_emb, query_ids=list(q_ids), query_emb=q_emb,
                       query_doc=np.asarray(q_doc), query_tokens=vocab.token_ids(q_texts), query_texts=list(q_texts),
                       meta={"source": "precomputed"})
