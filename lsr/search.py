"""Search: query text -> frozen text encoder -> D2S sparse query -> any backend -> ranked hits."""

from __future__ import annotations

from dataclasses import dataclass

from lsr.backends.base import Hit, SparseBackend
from lsr.d2s.model import D2SModel
from lsr.encoders.base import TextEncoder
from lsr.sparse import SparseVector
from lsr.vocab import Vocabulary


@dataclass
class SparseSearcher:
    """Keyword-style text search over a sparse index.

    `expand=True` uses the D2S query vector as is; `expand=False` keeps only the query's own tokens
    (no expansion), which is cheaper and closer to a keyword query.
    """

    backend: SparseBackend
    model: D2SModel
    encoder: TextEncoder
    vocab: Vocabulary

    def encode_query(self, text: str, expand: bool = True) -> SparseVector:
        if not text or not text.strip():
            raise ValueError("The query is empty; type some words to search for.")
        dense = self.encoder.encode_texts([text])
        tokens = None if expand else self.vocab.token_ids([text])
        return self.model.encode(dense, tokens)[0]

    def search(self, text: str, k: int = 10, expand: bool = True, explain: bool = True) -> list[Hit]:
        return self.backend.search(self.encode_query(text, expand), k=k, explain=explain)

    def top_tokens(self, hit: Hit, n: int = 5) -> list[tuple[str, float]]:
        """The tokens that contributed most to a hit's score, for people."""
        if not hit.contributions:
            return []
        ranked = sorted(hit.contributions.items(), key=lambda kv: -kv[1])[:n]
        return [(self.vocab.token(t), w) for t, w in ranked]
