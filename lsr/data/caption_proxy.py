"""The caption proxy: real Flickr30k / COCO captions standing in for image-text pairs.

There are no images offline, so for each image caption 0 plays the image document and captions 1-4
are the text queries; a frozen text encoder (MiniLM) plays the dense dual encoder. Every number
measured on it is a *caption proxy* number, not a reproduction of published image-text results.

Files come from `LSR_DATA` (default: `../shared/data` beside the project), never copied into it.
Encoded vectors are cached (see `lsr.data.cache`), so re-runs never re-encode.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from lsr.data.cache import atomic_save_npy, cache_dir, cache_key, file_digest, load_ragged, save_ragged
from lsr.data.split import PairedSplit
from lsr.errors import InvalidInputError, MissingFileError

log = logging.getLogger(__name__)

CAPTIONS_PER_IMAGE = 5
SPLIT_FILES = {
    ("f30k", "train"): "f30k/train",
    ("f30k", "dev"): "f30k/dev",
    ("f30k", "test"): "f30k/test",
    ("coco", "dev"): "coco/dev",
    ("coco", "test"): "coco/testall",
}


def data_root() -> Path:
    """`LSR_DATA` if set, else `../shared/data` relative to the project root or the working directory."""
    env = os.environ.get("LSR_DATA")
    candidates = [Path(env)] if env else [
        Path(__file__).resolve().parents[2].parent / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    for c in candidates:
        if (c / "f30k").is_dir():
            return c
    raise MissingFileError(
        f"Caption data not found in {[str(c) for c in candidates]}; set LSR_DATA to the folder holding f30k/ and coco/."
    )


def read_captions(dataset: str, split: str, max_images: int | None = None) -> tuple[list[str], list[str]]:
    """Captions and their image ids (5 per image, in order), optionally only the first `max_images` images."""
    try:
        stem = SPLIT_FILES[(dataset, split)]
    except KeyError:
        raise InvalidInputError(f"Unknown caption-proxy split {dataset}/{split}; choose one of {sorted(SPLIT_FILES)}.") from None
    root = data_root()
    caps = (root / f"{stem}_caps.txt").read_text(encoding="utf-8").splitlines()
    ids = (root / f"{stem}_ids.txt").read_text(encoding="utf-8").split()
    if len(caps) != len(ids) or len(caps) % CAPTIONS_PER_IMAGE:
        raise InvalidInputError(f"{stem}: {len(caps)} captions and {len(ids)} ids; expected equal multiples of 5.")
    if max_images is not None:
        caps, ids = caps[: max_images * CAPTIONS_PER_IMAGE], ids[: max_images * CAPTIONS_PER_IMAGE]
    caps = [c.strip() or "[empty caption]" for c in caps]
    return caps, ids


def load_split(dataset: str, split: str, encoder=None, vocab=None, max_images: int | None = None,
               show_progress: bool = True) -> PairedSplit:
    """Encode (or load from cache) one caption-proxy split as a `PairedSplit`.

    `encoder` (default: MiniLM) and `vocab` (default: its bert-base-uncased vocabulary) are built lazily,
    only when the cache misses.
    """
    caps, image_ids = read_captions(dataset, split, max_images)
    stem = SPLIT_FILES[(dataset, split)]
    src = data_root() / f"{stem}_caps.txt"
    content = file_digest(src)  # not the mtime: a re-copied data folder keeps its cache
    if encoder is None:
        from lsr.vocab import default_tokenizer_dir

        enc_tag = default_tokenizer_dir()
    else:
        enc_tag = getattr(encoder, "path", type(encoder).__name__)
    folder = cache_dir() / "caption_proxy"
    folder.mkdir(parents=True, exist_ok=True)

    def paths(n_captions: int) -> tuple[Path, Path]:
        key = cache_key(stem, content, n_captions, Path(str(enc_tag)).name)
        return folder / f"{dataset}_{split}_{key}.npy", folder / f"{dataset}_{split}_{key}_tokens.npz"

    emb_path, tok_path = paths(len(caps))
    full_emb, full_tok = paths(_count_lines(src))
    if full_emb.exists() and full_tok.exists():  # a subset is a prefix of the cached whole split
        emb = np.load(full_emb, mmap_mode="r")[: len(caps)].copy()
        tokens = load_ragged(full_tok)[: len(caps)]
    elif emb_path.exists() and tok_path.exists():
        emb = np.load(emb_path)
        tokens = load_ragged(tok_path)
    else:
        if encoder is None:
            from lsr.encoders.minilm import MiniLMEncoder

            encoder = MiniLMEncoder()
        if vocab is None:
            from lsr.vocab import Vocabulary

            vocab = Vocabulary()
        log.info("encoding %d captions of %s/%s (cached afterwards in %s)", len(caps), dataset, split, folder)
        emb = encoder.encode_texts(caps, show_progress=show_progress)
        tokens = vocab.token_ids(caps)
        save_ragged(tok_path, tokens)
        atomic_save_npy(emb_path, emb)
    return _to_split(f"{dataset}-{split}", caps, image_ids, emb, tokens)


def _to_split(name: str, caps: list[str], image_ids: list[str], emb: np.ndarray,
              tokens: list[np.ndarray]) -> PairedSplit:
    n_images = len(caps) // CAPTIONS_PER_IMAGE
    first = np.arange(n_images) * CAPTIONS_PER_IMAGE
    rest = np.array([i for i in range(len(caps)) if i % CAPTIONS_PER_IMAGE], dtype=np.int64)
    return PairedSplit(
        name=name,
        doc_ids=[f"img{image_ids[i]}" for i in first],
        doc_emb=emb[first],
        query_ids=[f"cap{i}" for i in rest],
        query_emb=emb[rest],
        query_doc=rest // CAPTIONS_PER_IMAGE,
        query_tokens=[tokens[i] for i in rest],
        doc_texts=[caps[i] for i in first],
        query_texts=[caps[i] for i in rest],
        meta={"source": "caption proxy", "dataset": name},
    )


def _count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as f:
        return sum(1 for _ in f)
