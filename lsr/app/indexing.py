"""Indexing jobs: a caption split, or a JSON-lines vector file, into the index at an address.

    result = index_split("runs/demo/index", load_encoder("runs/demo/model"), "proxy:f30k/test", dense=True)
    result = index_jsonl("opensearch://127.0.0.1:9200/my-docs", "docs.jsonl")

(Folders of images: `lsr.app.folders.index_folder`.) Each job records the encoder's provenance and
commits, so the index is durable and searchable when it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lsr.app.open import finish_writing, open_index
from lsr.app.specs import IndexSpec, NewIndex
from lsr.errors import InvalidInputError

if TYPE_CHECKING:
    from lsr.backends.base import IndexReport, SparseBackend
    from lsr.backends.opensearch.connection import Connection
    from lsr.backends.set_base import SetIndex
    from lsr.data.split import PairedSplit
    from lsr.encoders.sparse import D2SEncoder
    from lsr.sparse import SparseBatch


@dataclass(frozen=True)
class IndexingResult:
    """What an indexing job did: the index (open, committed), the backend's report, what was indexed and
    the documents' mean number of non-zero weights."""

    index: "SparseBackend | SetIndex"
    report: "IndexReport"
    source: str
    mean_nnz: float


def index_split(address: "str | Path | IndexSpec", encoder: "D2SEncoder", split: "str | PairedSplit", *,
                dense: bool = False, sets: int | None = None, overwrite: bool = False,
                connection: "Connection | None" = None, new: NewIndex | None = None) -> IndexingResult:
    """Encode a split's documents (``"proxy:f30k/test"``: its captions' frozen vectors) and index them.

    `dense` keeps dense vectors beside the sparse ones (re-ranking, hybrid search: the jointly trained
    head's when the model has one); `sets=N` makes a set index whose documents are their first N captions.
    """
    split = _load_split(split, encoder)
    docs = encoder.encode_dense(split.doc_emb)
    meta = [{"caption": t} for t in split.doc_texts] if split.doc_texts else None
    base = new or NewIndex()
    if sets is not None:
        return _index_sets(address, encoder, split, sets, overwrite, connection, base)
    dense_rows = encoder.dense_vectors(split.doc_emb) if dense else None
    new = NewIndex(encoder.vocab_size, None if dense_rows is None else int(dense_rows.shape[1]), base.shards,
                   base.replicas)
    index = open_index(address, create=True, overwrite=overwrite, new=new, connection=connection, vocab=encoder.vocab)
    report = index.index(split.doc_ids, docs, meta, dense=dense_rows)
    index.record_provenance(encoder.provenance())
    index = finish_writing(index, address, connection=connection, vocab=encoder.vocab)
    return IndexingResult(index, report, split.name, float(docs.sparsity()["mean_nnz"]))


def _index_sets(address, encoder, split, members: int, overwrite: bool, connection, new: NewIndex) -> IndexingResult:
    import numpy as np

    if members < 1:
        raise InvalidInputError(f"sets takes the number of members per document (>= 1), got {members}.")
    rows = [np.flatnonzero(split.query_doc == d)[: members - 1] for d in range(len(split.doc_ids))]
    member_vectors = [list(encoder.encode_dense(np.vstack([split.doc_emb[d:d + 1], split.query_emb[r]])))
                      for d, r in enumerate(rows)]
    index = open_index(address, create=True, overwrite=overwrite, connection=connection, vocab=encoder.vocab,
                       sets=True, new=NewIndex(len(encoder.vocab), None, new.shards, new.replicas))
    report = index.index(split.doc_ids, member_vectors,
                         [{"caption": t} for t in split.doc_texts] if split.doc_texts else None)
    index = finish_writing(index, address, connection=connection, vocab=encoder.vocab, sets=True)
    nnz = [v.nnz for doc in member_vectors for v in doc]
    return IndexingResult(index, report, split.name, float(np.mean(nnz)) if nnz else 0.0)


def index_jsonl(address: "str | Path | IndexSpec", path: str | Path, *, overwrite: bool = False,
                connection: "Connection | None" = None, batch_size: int = 10_000) -> IndexingResult:
    """Index a pyserini / Anserini ``JsonVectorCollection`` file (`lsr export` writes them) in batches;
    each document's ``contents`` becomes its ``caption`` metadata."""
    from lsr.exchange import iter_jsonl
    from lsr.sparse import SparseBatch
    from lsr.vocab import Vocabulary

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"No JSON-lines file {path}; write one with `lsr export`.")
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}.")
    vocab = Vocabulary()
    index = open_index(address, create=True, overwrite=overwrite, connection=connection, vocab=vocab,
                       new=NewIndex(len(vocab)))
    total: "IndexReport | None" = None
    nnz, batch = 0, []

    def flush() -> None:
        nonlocal total, nnz
        vectors: SparseBatch = SparseBatch.from_vectors([v for _, _, v in batch], len(vocab))
        report = index.index([i for i, _, _ in batch], vectors, [{"caption": c} if c else None for _, c, _ in batch])
        nnz += sum(v.nnz for _, _, v in batch)
        if total is None:
            total = report
        else:
            total.indexed += report.indexed
            total.failed.update(report.failed)
            total.skipped += report.skipped
        batch.clear()

    seen = 0
    for record in iter_jsonl(path, vocab):
        batch.append(record)
        seen += 1
        if len(batch) >= batch_size:
            flush()
    if batch or total is None:
        flush()
    index = finish_writing(index, address, connection=connection, vocab=vocab)
    return IndexingResult(index, total, str(path), nnz / seen if seen else 0.0)


def _load_split(split: "str | PairedSplit", encoder: "D2SEncoder") -> "PairedSplit":
    if not isinstance(split, str):
        return split
    from lsr.data.sources import load_split_spec

    return load_split_spec(split, encoder.vocab)
