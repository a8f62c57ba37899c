"""`PairedSplit`: dense vectors of documents (images) and queries (captions) with their relevance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lsr.errors import InvalidInputError


@dataclass
class PairedSplit:
    """One split of an image-text collection as dense vectors.

    Each query (caption) belongs to exactly one document (image): `query_doc[i]` is its row in `doc_emb`.
    `query_tokens[i]` holds the caption's WordPiece ids, used for no-expansion masking.
    """

    name: str
    doc_ids: list[str]
    doc_emb: np.ndarray
    query_ids: list[str]
    query_emb: np.ndarray
    query_doc: np.ndarray
    query_tokens: list[np.ndarray]
    doc_texts: list[str] | None = None
    query_texts: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.doc_emb = np.ascontiguousarray(self.doc_emb, dtype=np.float32)
        self.query_emb = np.ascontiguousarray(self.query_emb, dtype=np.float32)
        self.query_doc = np.asarray(self.query_doc, dtype=np.int64)
        if len(self.doc_ids) != len(self.doc_emb):
            raise InvalidInputError(f"{self.name}: {len(self.doc_ids)} doc ids but {len(self.doc_emb)} doc vectors.")
        if not (len(self.query_ids) == len(self.query_emb) == len(self.query_doc) == len(self.query_tokens)):
            raise InvalidInputError(f"{self.name}: query ids, vectors, relevance and tokens differ in length.")
        if self.query_doc.size and (self.query_doc.min() < 0 or self.query_doc.max() >= len(self.doc_ids)):
            raise InvalidInputError(f"{self.name}: a query points to a document row that does not exist.")
        for label, emb in (("doc", self.doc_emb), ("query", self.query_emb)):
            if not np.all(np.isfinite(emb)):
                raise InvalidInputError(f"{self.name}: {label} vectors contain NaN or inf.")

    @property
    def dense_dim(self) -> int:
        return int(self.doc_emb.shape[1])

    def qrels_t2i(self) -> dict[str, dict[str, int]]:
        """Text->image relevance: each caption's one image."""
        return {q: {self.doc_ids[d]: 1} for q, d in zip(self.query_ids, self.query_doc)}

    def qrels_i2t(self) -> dict[str, dict[str, int]]:
        """Image->text relevance: each image's own captions."""
        out: dict[str, dict[str, int]] = {d: {} for d in self.doc_ids}
        for q, d in zip(self.query_ids, self.query_doc):
            out[self.doc_ids[d]][q] = 1
        return out

    def subset(self, n_docs: int) -> "PairedSplit":
        """The first `n_docs` documents and their queries."""
        keep = self.query_doc < n_docs
        rows = np.flatnonzero(keep)
        return PairedSplit(
            name=f"{self.name}[:{n_docs}]",
            doc_ids=self.doc_ids[:n_docs],
            doc_emb=self.doc_emb[:n_docs],
            query_ids=[self.query_ids[i] for i in rows],
            query_emb=self.query_emb[rows],
            query_doc=self.query_doc[rows],
            query_tokens=[self.query_tokens[i] for i in rows],
            doc_texts=self.doc_texts[:n_docs] if self.doc_texts else None,
            query_texts=[self.query_texts[i] for i in rows] if self.query_texts else None,
            meta=dict(self.meta),
        )
