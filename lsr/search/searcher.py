"""Search: query text -> a sparse encoder -> any backend -> ranked hits with their matched tokens.

    searcher = SparseSearcher(EmbeddedIndex.load("runs/demo/index"), D2SEncoder.from_pretrained("runs/demo/model"))
    hits = searcher.search("a dog catching a frisbee", k=5)

`options` pass through to the backend (OpenSearch: ``mode="two_phase"``, ``method_parameters=...``).
The index's recorded provenance is checked once, on the first search (`lsr.provenance.check`).
"""

from __future__ import annotations

from typing import Any, Sequence

from lsr.backends.base import Hit, SparseBackend
from lsr.encoders.sparse import SparseEncoder
from lsr.provenance import check
from lsr.sparse import SparseVector


class SparseSearcher:
    """Keyword-style text search over a sparse index (pyserini style: the encoder apart from the index).

    `expand=True` uses the encoder's full query vector; `expand=False` keeps only the query's own
    tokens (no expansion), which is cheaper and closer to a keyword query.
    """

    def __init__(self, backend: SparseBackend, encoder: SparseEncoder):
        self.backend, self.encoder = backend, encoder
        self._checked = False

    @property
    def vocab(self):
        return self.encoder.vocab

    def encode_query(self, text: str, expand: bool = True) -> SparseVector:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("The query is empty; type some words to search for.")
        return self.encoder.encode_query([text], expand=expand)[0]

    def search(self, text: str, k: int = 10, expand: bool = True, explain: bool = True, **options: Any) -> list[Hit]:
        """The top-k hits for one query text; with `explain`, each hit's `tokens` name what matched."""
        self._check_provenance()
        hits = self.backend.search(self.encode_query(text, expand), k=k, explain=explain, **options)
        return self._name_tokens(hits)

    def batch_search(self, texts: Sequence[str], k: int = 10, expand: bool = True, explain: bool = False,
                     batch_size: int = 128, show_progress: bool = False, **options: Any) -> list[list[Hit]]:
        """The top-k hits of each query text, encoded in batches and searched in one backend call."""
        self._check_provenance()
        queries = self.encoder.encode_query(list(texts), expand=expand, batch_size=batch_size,
                                            show_progress=show_progress)
        return [self._name_tokens(hits) for hits in self.backend.search_batch(queries, k=k, explain=explain, **options)]

    def top_tokens(self, hit: Hit, n: int = 5) -> list[tuple[str, float]]:
        """The `n` tokens that contributed most to a hit's score, for people."""
        return sorted((hit.tokens or {}).items(), key=lambda kv: -kv[1])[:n]

    def _name_tokens(self, hits: list[Hit]) -> list[Hit]:
        vocab = self.encoder.vocab
        for hit in hits:
            if hit.contributions is not None:
                hit.tokens = {vocab.token(t): c for t, c in sorted(hit.contributions.items(), key=lambda kv: -kv[1])}
        return hits

    def _check_provenance(self) -> None:
        if not self._checked:
            check(self.backend.provenance(), self.encoder.provenance(), f"The index ({type(self.backend).__name__})")
            self._checked = True
