"""Sparse encoders: text or images in, `SparseBatch` vectors over the vocabulary out.

One interface (`SparseEncoder`, modelled on sentence-transformers' `SparseEncoder`) over every way this
project makes sparse vectors:

- `D2SEncoder`: a frozen dense encoder (MiniLM, BLIP, ALBEF) + a trained D2S projection. Text
  queries (expanded, or restricted to their own tokens), text or image documents.
- `LabelTokenEncoder`: the EfficientNet label-token encoder (images -> ImageNet class-name tokens,
  text -> its own content tokens); no D2S model.

- `InferenceFreeEncoder`: queries by a learned token-weight table (no model at query time; the table
  and its tokenizer are `lsr.encoders.inference_free`), documents by a D2S model as `D2SEncoder`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

from lsr.encoders.base import ImageInput, check_texts
from lsr.encoders.inference_free import (QueryTokens, clip_table, load_table, query_vectors, save_table,
                                         table_to_idf_json)
from lsr.errors import InvalidInputError
from lsr.provenance import model_record
from lsr.sparse import SparseBatch, SparseVector

if TYPE_CHECKING:
    from lsr.d2s.model import D2SModel
    from lsr.encoders.base import SparseImageEncoder, TextEncoder
    from lsr.vocab import Vocabulary


@runtime_checkable
class SparseEncoder(Protocol):
    """Encodes queries and documents into sparse vectors over `vocab`."""

    name: str
    vocab: "Vocabulary"

    def encode_query(self, texts: Sequence[str], expand: bool = True, batch_size: int = 128,
                     show_progress: bool = False) -> SparseBatch:
        ...

    def encode_document(self, items: Sequence[Any], batch_size: int = 32, show_progress: bool = False) -> SparseBatch:
        ...

    def decode(self, vectors: SparseBatch | SparseVector, top_k: int = 10) -> list:
        ...

    def sparsity(self, vectors: SparseBatch) -> dict[str, float]:
        ...

    def provenance(self) -> dict[str, Any]:
        ...


class _VocabularyOutput:
    """`decode` and `sparsity` for encoders with a `vocab`."""

    vocab: "Vocabulary"

    def decode(self, vectors: SparseBatch | SparseVector, top_k: int = 10) -> list:
        """The `top_k` heaviest (token, weight) of a vector, or of each vector of a batch."""
        return vectors.decode(self.vocab, top_k)

    def sparsity(self, vectors: SparseBatch) -> dict[str, float]:
        """Non-zeros per vector: mean, percentiles, max."""
        return vectors.sparsity()


class D2SEncoder(_VocabularyOutput):
    """A frozen dense encoder followed by a D2S projection (`lsr.d2s.model`).

    `min_weight` (default: the model's saved static-pruning threshold) drops weights <= it from queries
    and documents alike; `device` runs the projection there (the dense encoder keeps its own device).
    """

    def __init__(self, model: "D2SModel", dense: "TextEncoder | None" = None, vocab: "Vocabulary | None" = None,
                 min_weight: float | None = None, device: str | None = None):
        """`dense` None: the encoder recorded in the model's config, built on first use (projecting
        precomputed vectors with `encode_dense` needs none)."""
        self.model, self.device = model, device
        self._dense = None
        record = model.config.dense_encoder
        if dense is not None:
            self._set_dense(dense)
        self._vocab = vocab
        self.min_weight = model.config.min_weight if min_weight is None else float(min_weight)
        dense_name = record["name"] if record else getattr(dense, "name", type(dense).__name__.lower())
        self.name = f"{'unrecorded' if dense is None and not record else dense_name}+d2s"

    def _set_dense(self, dense: "TextEncoder") -> None:
        if dense.dim != self.model.config.dense_dim:
            raise InvalidInputError(f"The dense encoder gives {dense.dim}-d vectors, the D2S model expects "
                             f"{self.model.config.dense_dim}-d: use the dense encoder it was trained on "
                             f"(recorded: {self.model.config.dense_encoder or 'not recorded'}).")
        self._dense = dense

    @property
    def dense(self) -> "TextEncoder":
        """The frozen dense encoder (built from the model's record on first use)."""
        if self._dense is None:
            from lsr.encoders.registry import load_dense_encoder

            record = self.model.config.dense_encoder
            if not record:
                raise InvalidInputError("This D2S model does not record its dense encoder; pass one: "
                                 "D2SEncoder(model, dense=MiniLMEncoder()) or from_pretrained(dir, dense=...).")
            self._set_dense(load_dense_encoder(record["name"], record.get("path"), self.device))
        return self._dense

    @property
    def vocab(self) -> "Vocabulary":
        if self._vocab is None:
            vocab = getattr(self._dense, "vocab", None) if self._dense is not None else None
            if vocab is None:
                from lsr.vocab import Vocabulary

                vocab = Vocabulary()
            if len(vocab) < self.model.config.vocab_size:
                raise InvalidInputError(f"The vocabulary has {len(vocab)} tokens, the D2S model {self.model.config.vocab_size}.")
            self._vocab = vocab
        return self._vocab

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, dense: "TextEncoder | None" = None, device: str | None = None,
                        min_weight: float | None = None, vocab: "Vocabulary | None" = None) -> "D2SEncoder":
        """A saved D2S model and the dense encoder recorded with it (built on first use), or `dense`.

        A dense encoder of another dimension than the model's input is refused with a clear message. A model
        saved with inference-free queries gives an `InferenceFreeEncoder` (queries by its token table).
        """
        from lsr.d2s.model import D2SModel

        model = D2SModel.from_pretrained(model_dir)
        if model.config.query_encoder == "inference-free":
            return InferenceFreeEncoder(model, load_table(model_dir, model.config.vocab_size), dense, vocab,
                                        min_weight, device)
        if cls is not D2SEncoder:
            raise InvalidInputError(f"{model_dir} is a D2S model without inference-free queries (config query_encoder "
                             f"{model.config.query_encoder!r}); load it with D2SEncoder.from_pretrained.")
        return cls(model, dense, vocab, min_weight=min_weight, device=device)

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    def encode_query(self, texts: Sequence[str], expand: bool = True, batch_size: int = 128,
                     show_progress: bool = False) -> SparseBatch:
        """Query vectors; `expand=False` keeps only each query's own WordPiece tokens."""
        texts = _texts(texts)
        dense = self.dense.encode_texts(texts, batch_size=batch_size, show_progress=show_progress)
        return self._queries_from_dense(texts, dense, expand)

    def encode_query_with_dense(self, texts: Sequence[str], expand: bool = True,
                                batch_size: int = 128) -> tuple[SparseBatch, np.ndarray]:
        """Sparse query vectors and the dense ones (as `encode_query_dense`) from ONE pass of the frozen
        dense model: what dense re-ranking and hybrid search need."""
        texts = _texts(texts)
        dense = self.dense.encode_texts(texts, batch_size=batch_size)
        return self._queries_from_dense(texts, dense, expand), self.dense_vectors(dense)

    def _queries_from_dense(self, texts: list[str], dense: np.ndarray, expand: bool) -> SparseBatch:
        return self.encode_dense(dense, None if expand else self.vocab.token_ids(texts))

    def encode_document(self, items: Sequence[str | ImageInput], batch_size: int = 32,
                        show_progress: bool = False) -> SparseBatch:
        """Document vectors of texts (`str`: captions), or of images (`pathlib.Path` or PIL images) with an
        image-text encoder."""
        items = list(items)
        if all(isinstance(x, str) for x in items):
            dense = self.dense.encode_texts(check_texts(items), batch_size=batch_size, show_progress=show_progress)
        elif any(isinstance(x, str) for x in items):
            raise InvalidInputError("Documents mix texts (str) and images; pass images as pathlib.Path or PIL images, "
                             "in a call of their own.")
        elif hasattr(self.dense, "encode_images"):
            dense = self.dense.encode_images(items, batch_size=batch_size, show_progress=show_progress)
        else:
            raise InvalidInputError(f"{type(self.dense).__name__} encodes text only; use an image-text encoder "
                             "(BLIP, ALBEF) for image documents.")
        return self.encode_dense(dense)

    def encode_query_dense(self, texts: Sequence[str], batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
        """Dense query vectors: stage 2 of re-ranking, the dense half of hybrid search. The frozen model's
        (L2-normalised), through the jointly trained dense head when the D2S model has one."""
        return self.dense_vectors(self.dense.encode_texts(_texts(texts), batch_size=batch_size,
                                                          show_progress=show_progress))

    def dense_vectors(self, dense: np.ndarray) -> np.ndarray:
        """The dense vectors an index stores for re-ranking and hybrid search (`dense=`), from the frozen
        model's: the jointly trained head's when the model has one (`D2SModel.dense_vectors`)."""
        return self.model.dense_vectors(dense)

    def encode_query_tokens(self, texts: Sequence[str], batch_size: int = 128) -> list[np.ndarray]:
        """Each query's token vectors (special tokens dropped), for late interaction; needs a dense
        encoder with `encode_tokens` (MiniLM)."""
        if not hasattr(self.dense, "encode_tokens"):
            raise InvalidInputError(f"{type(self.dense).__name__} gives no token vectors; late interaction needs one "
                             "that does (MiniLM).")
        return self.dense.encode_tokens(_texts(texts), batch_size=batch_size)

    def encode_dense(self, dense: np.ndarray, token_ids: Sequence[np.ndarray] | None = None) -> SparseBatch:
        """Project precomputed dense vectors (the path evaluation and caches use)."""
        return self.model.encode(dense, token_ids, device=self.device, min_weight=self.min_weight)

    def provenance(self) -> dict[str, Any]:
        return model_record(self.name, self.model, self.vocab, "d2s", dense_encoder=self.model.config.dense_encoder,
                            min_weight=self.min_weight)


class LabelTokenEncoder(_VocabularyOutput):
    """Images -> class-name tokens, queries -> their content tokens, through a `SparseImageEncoder`."""

    def __init__(self, encoder: "SparseImageEncoder"):
        self.encoder = encoder
        self.vocab = encoder.vocab
        self.name = encoder.name

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode_query(self, texts: Sequence[str], expand: bool = True, batch_size: int = 128,
                     show_progress: bool = False) -> SparseBatch:
        """Each query's content tokens, weight 1 (there is no expansion to switch off)."""
        return SparseBatch.from_vectors([self.encoder.encode_query(t) for t in _texts(texts)], self.vocab_size)

    def encode_document(self, items: Sequence[ImageInput], batch_size: int = 32,
                        show_progress: bool = False) -> SparseBatch:
        return self.encoder.encode_images_sparse(list(items), batch_size=batch_size, show_progress=show_progress)

    def provenance(self) -> dict[str, Any]:
        return model_record(self.name, None, self.vocab, "label-tokens")


def _texts(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError("encode_query takes a list of texts; wrap a single query: [text].")
    return check_texts(texts)


class InferenceFreeEncoder(D2SEncoder):
    """Queries by table lookup (no neural network), documents by a D2S model over a frozen dense encoder.

    The table is clipped into [`WEIGHT_FLOOR`, `WEIGHT_CEILING`], the weights OpenSearch accepts.

    `encode_query(texts)` needs neither the dense encoder nor torch work: tokenize, look up, done. The
    dense encoder is built only for documents (and for the dense half of re-ranking / hybrid search).
    """

    def __init__(self, model: "D2SModel", table: np.ndarray, dense: "TextEncoder | None" = None,
                 vocab: "Vocabulary | None" = None, min_weight: float | None = None, device: str | None = None):
        super().__init__(model, dense, vocab, min_weight=min_weight, device=device)
        table = np.asarray(table, dtype=np.float32)
        if table.shape != (model.config.vocab_size,) or np.any(table < 0) or not np.all(np.isfinite(table)):
            raise InvalidInputError(f"The query table must hold {model.config.vocab_size} finite non-negative weights, "
                             f"got shape {table.shape}.")
        self.table = clip_table(table)
        self.name = self.name.replace("+d2s", "+d2s-inference-free")
        self._tokens: QueryTokens | None = None

    @property
    def query_tokens(self) -> QueryTokens:
        if self._tokens is None:
            self._tokens = QueryTokens(self.vocab)
        return self._tokens

    def encode_query(self, texts: Sequence[str], expand: bool = True, batch_size: int = 128,
                     show_progress: bool = False) -> SparseBatch:
        """Each query's distinct tokens weighted by the table (`expand` has no effect: never expanded)."""
        return query_vectors(self.table, self.query_tokens(_texts(texts)))

    def _queries_from_dense(self, texts: list[str], dense: np.ndarray, expand: bool) -> SparseBatch:
        return self.encode_query(texts)  # the table's weights; the dense vectors serve the dense half only

    def save_pretrained(self, directory: str | Path) -> None:
        """The D2S model, its config marked inference-free, and the query table."""
        self.model.config.query_encoder = "inference-free"
        self.model.save_pretrained(directory)
        save_table(self.table, directory)

    def tokenize_model_files(self) -> dict[str, str]:
        """The two files of an ML Commons SPARSE_TOKENIZE model: ``tokenizer.json`` and ``idf.json``."""
        return {"tokenizer.json": self.query_tokens.tokenizer_json(),
                "idf.json": json.dumps(table_to_idf_json(self.table, self.vocab))}

    def provenance(self) -> dict[str, Any]:
        record = model_record(self.name, self.model, self.vocab, "d2s", dense_encoder=self.model.config.dense_encoder,
                              min_weight=self.min_weight)
        record["query_encoder"] = "inference-free"
        return record
