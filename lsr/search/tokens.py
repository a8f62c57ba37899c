"""Document token vectors kept beside an index, and token-level late interaction (TGDT's fine stage).

TGDT (Liu et al., IEEE TIP 2023; github.com/LCFractal/TGDT, `evaluate_utils/evaluation.py`) ranks by
global similarity first, then re-scores the top candidates by d_local + d_global, where d_local sums
over the query's tokens the best similarity with any of the document's tokens or regions (special
tokens dropped). `late_scores` computes exactly that with cosines. Token vectors are written once
(`lsr index --tokens DIR`), stored as float16, and never recomputed per query.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from lsr.errors import InvalidInputError, MissingFileError

MANIFEST = "tokens.json"
FORMAT = "lsr-token-vectors"


class TokenStore:
    """Ragged per-document token vectors: one float16 matrix, int64 row offsets, the ids."""

    def __init__(self, ids: Sequence[str], offsets: np.ndarray, vectors: np.ndarray):
        if len(offsets) != len(ids) + 1 or int(offsets[-1]) != len(vectors):
            raise InvalidInputError(f"Token store: {len(ids)} ids, {len(offsets)} offsets and {len(vectors)} vectors "
                             "do not line up.")
        self.ids = list(ids)
        self.offsets, self.vectors = offsets, vectors
        self._row = {doc_id: i for i, doc_id in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            raise InvalidInputError("Token store: an id appears twice; give each document once.")

    @classmethod
    def build(cls, ids: Sequence[str], token_vectors: Sequence[np.ndarray]) -> "TokenStore":
        """From each document's (tokens, dim) array (L2-normalised rows, as `encode_tokens` gives)."""
        if len(ids) != len(token_vectors):
            raise InvalidInputError(f"{len(ids)} ids but {len(token_vectors)} token arrays; give one per document.")
        for doc_id, arr in zip(ids, token_vectors):
            if np.asarray(arr).ndim != 2 or len(arr) == 0:
                raise InvalidInputError(f"Document {doc_id!r} has no token vectors ((tokens, dim) with tokens >= 1).")
        lengths = np.array([len(a) for a in token_vectors], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(ids, offsets, np.concatenate([np.asarray(a, dtype=np.float16) for a in token_vectors]))

    def get(self, ids: Sequence[str]) -> list[np.ndarray]:
        """Each document's token vectors (float32), in the order of `ids`; KeyError names a missing id."""
        out = []
        for doc_id in ids:
            if doc_id not in self._row:
                raise KeyError(f"No token vectors for document {doc_id!r}; rebuild the store with `lsr index --tokens`.")
            r = self._row[doc_id]
            out.append(self.vectors[self.offsets[r]:self.offsets[r + 1]].astype(np.float32))
        return out

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._row

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored arrays (vectors and offsets)."""
        return int(self.vectors.nbytes + self.offsets.nbytes)

    def save(self, directory: str | Path) -> None:
        """Write `vectors.npy`, `offsets.npy` and `tokens.json` (ids); each under a temporary name first."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for name, arr in (("vectors.npy", self.vectors), ("offsets.npy", self.offsets)):
            tmp = path / (name + ".tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
            os.replace(tmp, path / name)
        tmp = path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "dim": int(self.vectors.shape[1]), "ids": self.ids}))
        os.replace(tmp, path / MANIFEST)

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "TokenStore":
        path = Path(directory)
        if not (path / MANIFEST).is_file():
            raise MissingFileError(f"No {MANIFEST} in {path}; write token vectors with `lsr index --tokens {path}`.")
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") != FORMAT:
            raise InvalidInputError(f"{path / MANIFEST} is not a token store ({manifest.get('format')!r}).")
        vectors = np.load(path / "vectors.npy", mmap_mode="r" if mmap else None)
        return cls(manifest["ids"], np.load(path / "offsets.npy"), vectors)


def late_scores(query_tokens: np.ndarray, doc_tokens: Sequence[np.ndarray], global_cos: np.ndarray) -> np.ndarray:
    """Per document: sum over query tokens of the best cosine with the document's tokens, plus the global
    cosine (TGDT's d_local + d_global). Rows must be L2-normalised."""
    q = np.asarray(query_tokens, dtype=np.float32)
    if not doc_tokens:
        return np.zeros(0, dtype=np.float32)
    lengths = np.array([len(d) for d in doc_tokens])
    sims = q @ np.concatenate(doc_tokens).astype(np.float32).T  # (query tokens, all document tokens)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    best = np.maximum.reduceat(sims, starts, axis=1)  # (query tokens, documents)
    return (best.sum(axis=0) + np.asarray(global_cos, dtype=np.float32)).astype(np.float32)
