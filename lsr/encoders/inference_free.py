"""Inference-free queries: a query is its own WordPiece tokens, each weighted by one learned table.

    query "a dog, a DOG!"  -> tokenize (bert-base-uncased tokenizer.json, no special tokens, each token once)
                           -> {"a": w[a], "dog": w[dog], ",": w[,], "!": w[!]}       (w >= 0, one per token)
    documents (images)     -> the D2S projection, as always

This is OpenSearch's "doc-only" sparse mode, for images: ML Commons' SPARSE_TOKENIZE model does exactly
this lookup (`tokenizer.json` + `idf.json`, a missing token weighing 1.0), so the node runs the whole
query with no model server (`lsr.backends.opensearch.tokenize_model`). The tokenizer here is the
vocabulary's own `tokenizer.json` with truncation and padding switched off, the file that is exported.

Tables: `stock_idf` (the IDF table OpenSearch ships for its ``bert-uncased`` analyzer, read from the
ML Commons plugin archive), `idf_from_token_ids` (IDF over training captions: the initial table for
training), or a table learned by `lsr.d2s.inference_free` and saved with the model
(``query_weights.safetensors``).

This module is the query table and its tokenizer only; the encoder that pairs it with a D2S model for
documents is `lsr.encoders.sparse.InferenceFreeEncoder` (which `D2SEncoder.from_pretrained` returns for
an inference-free model).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lsr.errors import InvalidInputError, MissingFileError
from lsr.sparse import SparseBatch, SparseVector

if TYPE_CHECKING:
    from lsr.vocab import Vocabulary

WEIGHTS_NAME = "query_weights.safetensors"
# OpenSearch refuses a query token weight outside (0, 64] ("weight must be in (0, 64.0]"), and an idf.json
# cannot leave a token out (it would weigh 1.0): every weight is clipped into [FLOOR, CEILING], in Python
# as on the node, so a token the table zeroed still matches with a negligible weight in both backends.
WEIGHT_FLOOR = 1e-4
WEIGHT_CEILING = 64.0
ML_ALGORITHMS_JAR = "opensearch-ml-algorithms-"  # inside the ML Commons plugin zip
STOCK_ANALYZER_ZIP = "analysis/bert-uncased.zip"


def query_tokenizer(vocab: "Vocabulary"):
    """The vocabulary's `tokenizers.Tokenizer` without truncation or padding (what the node runs)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(vocab.tokenizer.backend_tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def distinct_non_special(ids: Sequence[int], special: Sequence[int]) -> np.ndarray:
    """A text's token ids as a query keeps them: each once, sorted, special tokens dropped (int32)."""
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    return ids[~np.isin(ids, np.asarray(special, dtype=np.int64))].astype(np.int32)


def clip_table(table: np.ndarray) -> np.ndarray:
    """The weights every backend uses: the table clipped into [`WEIGHT_FLOOR`, `WEIGHT_CEILING`]."""
    return np.clip(np.asarray(table, dtype=np.float32), WEIGHT_FLOOR, WEIGHT_CEILING).astype(np.float32)


def query_vectors(table: np.ndarray, token_ids: Sequence[np.ndarray]) -> SparseBatch:
    """Sparse query vectors: each query's distinct tokens weighted by the (clipped) table."""
    weights = clip_table(table)
    return SparseBatch.from_vectors([SparseVector(ids, weights[ids]) for ids in token_ids], len(weights))


class QueryTokens:
    """Text -> its distinct non-special WordPiece ids, as ML Commons' SPARSE_TOKENIZE model tokenizes."""

    def __init__(self, vocab: "Vocabulary"):
        self.vocab = vocab
        self.tokenizer = query_tokenizer(vocab)
        self.special = np.array(sorted(vocab.special_ids), dtype=np.int64)

    def __call__(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [distinct_non_special(e.ids, self.special)
                for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def tokenizer_json(self) -> str:
        return self.tokenizer.to_str()


def idf_from_token_ids(token_ids: Sequence[np.ndarray], vocab_size: int) -> np.ndarray:
    """BM25 IDF per token over a collection of texts' distinct token ids: log(1 + (N - df + 0.5) / (df + 0.5)).

    Tokens never seen get the IDF of df = 0 (the rarest)."""
    df = np.zeros(vocab_size, dtype=np.float64)
    for ids in token_ids:
        df[np.asarray(ids, dtype=np.int64)] += 1
    n = max(len(token_ids), 1)
    return np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)


def table_from_idf_json(idf: dict[str, float], vocab: "Vocabulary", default: float = 1.0) -> np.ndarray:
    """A {token: weight} map (an ``idf.json``) as a table over the vocabulary; absent tokens weigh
    `default` (ML Commons uses 1.0)."""
    table = np.full(len(vocab), default, dtype=np.float32)
    for token, weight in idf.items():
        try:
            table[vocab.id(token)] = float(weight)
        except KeyError:
            continue  # a token of another vocabulary cannot occur in our queries
    return table


def table_to_idf_json(table: np.ndarray, vocab: "Vocabulary") -> dict[str, float]:
    """The table as ML Commons' ``idf.json`` ({token: weight} for every vocabulary token)."""
    return {vocab.token(i): float(w) for i, w in enumerate(np.asarray(table, dtype=np.float32).tolist())}


def stock_idf(vocab: "Vocabulary", plugin_zip: str | Path) -> np.ndarray:
    """The IDF table OpenSearch ships for its ``bert-uncased`` analyzer (variant (a): no training),
    read from the ML Commons plugin zip (its algorithms jar holds ``analysis/bert-uncased.zip``); the one
    `lsr opensearch start` downloaded is `lsr.node.install.find_ml_plugin_zip()`."""
    path = Path(plugin_zip)
    with zipfile.ZipFile(path) as plugin:
        jars = [n for n in plugin.namelist() if Path(n).name.startswith(ML_ALGORITHMS_JAR) and n.endswith(".jar")]
        if not jars:
            raise MissingFileError(f"{path} holds no {ML_ALGORITHMS_JAR}*.jar; is it the ML Commons plugin zip?")
        with zipfile.ZipFile(io.BytesIO(plugin.read(jars[0]))) as jar, \
                zipfile.ZipFile(io.BytesIO(jar.read(STOCK_ANALYZER_ZIP))) as analyzer:
            idf = json.loads(analyzer.read("idf.json"))
    return table_from_idf_json(idf, vocab)


def save_table(table: np.ndarray, directory: str | Path) -> Path:
    from safetensors.numpy import save_file

    path = Path(directory) / WEIGHTS_NAME
    save_file({"weights": np.ascontiguousarray(table, dtype=np.float32)}, str(path))
    return path


def load_table(directory: str | Path, vocab_size: int) -> np.ndarray:
    from safetensors.numpy import load_file

    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise MissingFileError(f"{path} is missing: an inference-free model keeps its query weights there "
                                "(train one with `lsr train --query-encoder inference-free`).")
    table = load_file(str(path))["weights"]
    if table.shape != (vocab_size,) or not np.all(np.isfinite(table)) or np.any(table < 0):
        raise InvalidInputError(f"{path} must hold {vocab_size} finite non-negative weights; got shape {table.shape}.")
    return table.astype(np.float32)
