"""JSON-lines exchange of sparse vectors in the pyserini/Anserini JsonVectorCollection layout.

Each line is `{"id": ..., "contents": ..., "vector": {token: weight}}`, readable by Anserini
(`-collection JsonVectorCollection -impact -pretokenized`) and by PISA tools such as `pyterrier-pisa`.
A sidecar `<file>.meta.json` says which token naming the file uses:
- "wordpiece": the vocabulary's token strings (what Anserini and PISA expect; tokens may contain '.');
- "id": decimal token ids as strings (lossless for any backend).
With `quantize=Q`, weights are written as integers round(w * Q) (impact scores; zeros dropped).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from lsr.errors import InvalidInputError
from lsr.sparse import SparseBatch, SparseVector

from lsr.vocab import Vocabulary

NAMINGS = ("wordpiece", "id")


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def write_jsonl(path: str | Path, ids: Sequence[str], vectors: SparseBatch, vocab: Vocabulary | None = None,
                contents: Sequence[str] | None = None, naming: str = "wordpiece",
                quantize: int | None = None) -> int:
    """Write vectors as JSON lines plus the naming sidecar; returns the number of lines written."""
    if naming not in NAMINGS:
        raise InvalidInputError(f"Unknown token naming {naming!r}; choose one of {NAMINGS}.")
    if naming == "wordpiece" and vocab is None:
        raise InvalidInputError("Token naming 'wordpiece' needs a Vocabulary.")
    if len(ids) != len(vectors) or (contents is not None and len(contents) != len(ids)):
        raise InvalidInputError("ids, vectors and contents must have the same length.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, (doc_id, vec) in enumerate(zip(ids, vectors)):
            weights = vec.weights
            keys = vec.ids
            if quantize:
                q = np.rint(weights * quantize).astype(np.int64)
                keys, weights = keys[q > 0], q[q > 0]
            names = [vocab.token(int(t)) for t in keys] if naming == "wordpiece" else [str(int(t)) for t in keys]
            vector = {n: (int(w) if quantize else float(w)) for n, w in zip(names, weights)}
            record = {"id": str(doc_id), "contents": contents[i] if contents is not None else "", "vector": vector}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    meta = {"layout": "pyserini JsonVectorCollection", "token_naming": naming,
            "vocabulary": str(vocab.path) if vocab is not None else None,
            "weights": f"int round(w*{quantize})" if quantize else "float32"}
    _meta_path(path).write_text(json.dumps(meta, indent=2))
    return len(ids)


def iter_jsonl(path: str | Path, vocab: Vocabulary | None = None) -> Iterator[tuple[str, str, SparseVector]]:
    """Yield (id, contents, vector) from a JSON-lines file; token naming from the sidecar (default wordpiece)."""
    path = Path(path)
    meta_file = _meta_path(path)
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    naming = meta.get("token_naming", "wordpiece")
    weights_desc = meta.get("weights", "float32")
    scale = 1.0 / float(weights_desc[len("int round(w*"):-1]) if weights_desc.startswith("int round(w*") else 1.0
    if naming == "wordpiece" and vocab is None:
        raise InvalidInputError(f"{path} names tokens by WordPiece string; pass the Vocabulary to read it.")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                vector = record["vector"]
                ids = [vocab.id(t) for t in vector] if naming == "wordpiece" else [int(t) for t in vector]
            except (json.JSONDecodeError, KeyError, ValueError) as exc:
                raise InvalidInputError(f"{path}:{n}: not a valid vector record ({exc}).") from exc
            weights = np.asarray(list(vector.values()), dtype=np.float32) * scale
            yield str(record["id"]), record.get("contents", ""), SparseVector(np.asarray(ids, np.int32), weights)


def read_jsonl(path: str | Path, vocab: Vocabulary | None = None,
               vocab_size: int | None = None) -> tuple[list[str], list[str], SparseBatch]:
    """Read a whole JSON-lines file into ids, contents and a `SparseBatch`."""
    ids, contents, vectors = [], [], []
    for doc_id, text, vec in iter_jsonl(path, vocab):
        ids.append(doc_id)
        contents.append(text)
        vectors.append(vec)
    size = vocab_size or (len(vocab) if vocab is not None else 30522)
    return ids, contents, SparseBatch.from_vectors(vectors, size)


def write_queries_tsv(path: str | Path, ids: Iterable[str], texts: Iterable[str]) -> None:
    """Queries as `id<TAB>text` lines (the TREC/pyserini topic layout)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for qid, text in zip(ids, texts):
            f.write(f"{qid}\t{' '.join(text.split())}\n")
