"""Inference-free queries: a query is its own WordPiece tokens, each weighted by one learned table.

    query "a dog, a DOG!"  -> tokenize (bert-base-uncased tokenizer.json, no special tokens, each token once)
                           -> {"a": w[a], "dog": w[dog], ",": w[,], "!": w[!]}       (w >= 0, one per token)
    documents (images)     -> the D2S projection, as always

This is OpenSearch's "doc-only" sparse mode, for images: ML Commons' SPARSE_TOKENIZE model does exactly
this lookup (`tokenizer.json` + `idf.json`, a missing token weighing 1.0), so the node runs the whole
query with no model server (`lsr.backends.opensearch.tokenize_model`). The tokenizer here is the
vocabulary's own `tokenizer.json` with truncation and padding switched off, the file that is exported.

Tables: `stock_idf` (the IDF table OpenSearch ships for its ``bert-uncased`` analyzer, read from the local
ML Commons plugin archive), `idf_from_token_ids` (IDF over training captions: the initial table for
training), or a table learned by `lsr.d2s.inference_free` and saved with the model
(``query_weights.safetensors``).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lsr.encoders.sparse import D2SEncoder, _texts
from lsr.provenance import model_record
from lsr.sparse import SparseBatch, SparseVector

if TYPE_CHECKING:
    from lsr.d2s.model import D2SModel
    from lsr.encoders.base import TextEncoder
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


def find_ml_plugin_zip(downloads: str | Path | None = None) -> Path:
    """The ML Commons plugin zip that `lsr opensearch start` downloaded (Maven Central)."""
    from lsr.node.install import NodeConfig

    folder = Path(downloads) if downloads is not None else NodeConfig.from_env().downloads
    found = sorted(folder.glob("opensearch-ml-plugin-*.zip"))
    if not found:
        raise FileNotFoundError(f"No ML Commons plugin zip in {folder}: the stock bert-uncased IDF table ships "
                                "inside it; run `lsr opensearch start` once (it downloads the plugin), or pass "
                                "the zip's path.")
    return found[-1]


def stock_idf(vocab: "Vocabulary", plugin_zip: str | Path | None = None) -> np.ndarray:
    """The IDF table OpenSearch ships for its ``bert-uncased`` analyzer (variant (a): no training),
    read from the local ML Commons plugin zip (its algorithms jar holds ``analysis/bert-uncased.zip``)."""
    path = Path(plugin_zip) if plugin_zip is not None else find_ml_plugin_zip()
    with zipfile.ZipFile(path) as plugin:
        jars = [n for n in plugin.namelist() if Path(n).name.startswith(ML_ALGORITHMS_JAR) and n.endswith(".jar")]
        if not jars:
            raise FileNotFoundError(f"{path} holds no {ML_ALGORITHMS_JAR}*.jar; is it the ML Commons plugin zip?")
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
        raise FileNotFoundError(f"{path} is missing: an inference-free model keeps its query weights there "
                                "(train one with `lsr train --query-encoder inference-free`).")
    table = load_file(str(path))["weights"]
    if table.shape != (vocab_size,) or not np.all(np.isfinite(table)) or np.any(table < 0):
        raise ValueError(f"{path} must hold {vocab_size} finite non-negative weights; got shape {table.shape}.")
    return table.astype(np.float32)


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
            raise ValueError(f"The query table must hold {model.config.vocab_size} finite non-negative weights, "
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
