"""Sparse lexical vectors over a WordPiece vocabulary.

Token ids are the canonical key everywhere in the project. Token strings are for people and for
backends that need names; several vocabulary tokens contain '.', so no code here treats a token
string as a safe field name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from lsr.errors import InvalidInputError
from lsr.vocab import VOCAB_SIZE, Vocabulary


@dataclass(frozen=True)
class SparseVector:
    """One sparse vector: sorted unique token ids and their positive float32 weights."""

    ids: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids, dtype=np.int32)
        weights = np.asarray(self.weights, dtype=np.float32)
        if ids.shape != weights.shape or ids.ndim != 1:
            raise InvalidInputError(f"ids and weights must be 1-d of equal length, got {ids.shape} and {weights.shape}.")
        if not np.all(np.isfinite(weights)):
            raise InvalidInputError("Sparse vector has NaN or inf weights; check the encoder output.")
        order = np.argsort(ids, kind="stable")
        ids, weights = ids[order], weights[order]
        if ids.size and np.any(np.diff(ids) == 0):
            raise InvalidInputError("Sparse vector has duplicate token ids.")
        keep = weights != 0
        object.__setattr__(self, "ids", ids[keep])
        object.__setattr__(self, "weights", weights[keep])

    @property
    def nnz(self) -> int:
        return int(self.ids.size)

    @classmethod
    def from_dict(cls, vector: Mapping[int | str, float], vocab: Vocabulary | None = None) -> "SparseVector":
        """Build from `{token_id: w}` or, with a vocabulary, `{token: w}`."""
        keys = list(vector)
        if keys and isinstance(keys[0], str):
            if vocab is None:
                raise InvalidInputError("A {token: weight} dict needs a Vocabulary to map tokens to ids.")
            ids = [vocab.id(k) for k in keys]
        else:
            ids = [int(k) for k in keys]
        return cls(np.asarray(ids, dtype=np.int32), np.asarray(list(vector.values()), dtype=np.float32))

    def to_dict(self, vocab: Vocabulary | None = None) -> dict:
        """`{token: weight}` with a vocabulary, else `{token_id: weight}`."""
        if vocab is None:
            return {int(i): float(w) for i, w in zip(self.ids, self.weights)}
        return {vocab.token(int(i)): float(w) for i, w in zip(self.ids, self.weights)}

    def decode(self, vocab: Vocabulary, top_k: int = 10) -> list[tuple[str, float]]:
        """The `top_k` heaviest tokens, for people."""
        order = np.argsort(-self.weights, kind="stable")[:top_k]
        return [(vocab.token(int(self.ids[i])), float(self.weights[i])) for i in order]

    def dot(self, other: "SparseVector") -> float:
        common, a, b = np.intersect1d(self.ids, other.ids, assume_unique=True, return_indices=True)
        return float(np.dot(self.weights[a].astype(np.float64), other.weights[b]))


class SparseBatch:
    """A batch of sparse vectors as a float32 CSR matrix of shape (n, vocab_size)."""

    def __init__(self, matrix: sp.spmatrix | sp.sparray, vocab_size: int = VOCAB_SIZE):
        csr = sp.csr_matrix(matrix, dtype=np.float32)
        if csr.shape[1] != vocab_size:
            raise InvalidInputError(f"Sparse batch has {csr.shape[1]} columns, expected vocab_size={vocab_size}.")
        if csr.nnz and not np.all(np.isfinite(csr.data)):
            raise InvalidInputError("Sparse batch has NaN or inf weights; check the encoder output.")
        csr.eliminate_zeros()
        csr.sort_indices()
        self.csr = csr

    @classmethod
    def from_dense(cls, dense, threshold: float = 0.0) -> "SparseBatch":
        """From a (n, vocab) numpy array or torch tensor, keeping entries > threshold."""
        if hasattr(dense, "detach"):
            dense = dense.detach().float().cpu().numpy()
        dense = np.asarray(dense, dtype=np.float32)
        if dense.ndim != 2:
            raise InvalidInputError(f"Expected a 2-d (n, vocab) array, got shape {dense.shape}.")
        if not np.all(np.isfinite(dense)):
            raise InvalidInputError("Dense activations contain NaN or inf.")
        rows, cols = np.nonzero(dense > threshold)
        m = sp.csr_matrix((dense[rows, cols], (rows, cols)), shape=dense.shape, dtype=np.float32)
        return cls(m, vocab_size=dense.shape[1])

    @classmethod
    def from_vectors(cls, vectors: Iterable[SparseVector], vocab_size: int = VOCAB_SIZE) -> "SparseBatch":
        vectors = list(vectors)
        indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([v.nnz for v in vectors])
        ids = np.concatenate([v.ids for v in vectors]) if vectors else np.zeros(0, np.int32)
        ws = np.concatenate([v.weights for v in vectors]) if vectors else np.zeros(0, np.float32)
        if ids.size and ids.max() >= vocab_size:
            raise InvalidInputError(f"Token id {int(ids.max())} is outside the vocabulary of size {vocab_size}.")
        return cls(sp.csr_matrix((ws, ids, indptr), shape=(len(vectors), vocab_size)), vocab_size)

    @classmethod
    def vstack(cls, batches: Sequence["SparseBatch"]) -> "SparseBatch":
        if not batches:
            raise InvalidInputError("vstack needs at least one batch.")
        return cls(sp.vstack([b.csr for b in batches], format="csr"), batches[0].vocab_size)

    @property
    def vocab_size(self) -> int:
        return self.csr.shape[1]

    def __len__(self) -> int:
        return self.csr.shape[0]

    def __getitem__(self, i: int) -> SparseVector:
        start, end = self.csr.indptr[i], self.csr.indptr[i + 1]
        return SparseVector(self.csr.indices[start:end], self.csr.data[start:end])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def rows(self, index) -> "SparseBatch":
        return SparseBatch(self.csr[index], self.vocab_size)

    def nnz_per_row(self) -> np.ndarray:
        return np.diff(self.csr.indptr)

    def keep_above(self, threshold: float) -> "SparseBatch":
        """A copy keeping only weights > `threshold` (static pruning, as `D2SModel.encode(min_weight=)`)."""
        csr = self.csr.copy()
        csr.data[csr.data <= threshold] = 0
        csr.eliminate_zeros()
        return SparseBatch(csr, self.vocab_size)

    def sparsity(self, percentiles: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
        """Mean, percentiles and max of non-zeros per vector."""
        nnz = self.nnz_per_row()
        if nnz.size == 0:
            return {"n": 0, "mean_nnz": 0.0}
        out = {"n": int(nnz.size), "mean_nnz": float(nnz.mean())}
        for p in percentiles:
            out[f"p{p:g}_nnz"] = float(np.percentile(nnz, p))
        out["max_nnz"] = float(nnz.max())
        return out

    def decode(self, vocab: Vocabulary, top_k: int = 10) -> list[list[tuple[str, float]]]:
        return [v.decode(vocab, top_k) for v in self]

    def dot(self, other: "SparseBatch", chunk: int = 1024) -> np.ndarray:
        """Exact (n, m) float32 dot-product scores against another batch.

        Sparse-sparse products when vectors are sparse; dense blocks when they are not (e.g. an untrained
        projection activates most of the vocabulary), which is far faster there.
        """
        density = (self.csr.nnz / max(1, len(self))) * (other.csr.nnz / max(1, len(other))) / self.vocab_size
        if density < 64:
            return (self.csr @ other.csr.T).toarray().astype(np.float32)
        right = other.csr.T.toarray()
        out = np.empty((len(self), len(other)), dtype=np.float32)
        for start in range(0, len(self), chunk):
            out[start:start + chunk] = self.csr[start:start + chunk].toarray() @ right
        return out


def flops(queries: SparseBatch, docs: SparseBatch) -> float:
    """Mean number of co-activated vocabulary terms per query-document pair (the FLOPs measure)."""
    q_df = np.bincount(queries.csr.indices, minlength=queries.vocab_size).astype(np.float64)
    d_df = np.bincount(docs.csr.indices, minlength=docs.vocab_size).astype(np.float64)
    return float(q_df @ d_df) / max(1, len(queries) * len(docs))
