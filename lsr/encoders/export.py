"""A D2S query encoder as one self-contained module for OpenSearch ML Commons (a LOCAL SPARSE_ENCODING model).

The module takes what ML Commons' sparse-encoding translator feeds (``input_ids`` and ``attention_mask`` of
the node's ``tokenizer.json``, named ``input1.input_ids`` / ``input1.attention_mask``: a dict input
``input1`` for TorchScript, those graph input names for ONNX) and returns a ``[batch, vocab]`` weight
tensor, whose non-zero entries the node turns into ``{wordpiece: weight}``. Inside it, the same path as
`D2SEncoder.encode_query`:

    frozen MiniLM (truncated to its 128 tokens) -> mean pool -> L2 normalise -> D2S head -> log1p(relu)
    -> the model's static-pruning threshold -> keep the heaviest `max_terms`

- ``max_terms`` (default 1,024, OpenSearch's clause limit and what `QueryRules` caps at) keeps every query
  under ``too_many_clauses``; an untrained head gives ~15,000 tokens otherwise.
- The node names each weight by decoding its id with the zip's ``tokenizer.json``, whose decoder is
  set to give the feature names our ``rank_features`` indexes store (`NAMING_DECODER`: '.' as ``%2E``,
  '%' as ``%25``, `lsr.backends.opensearch.features`), with [CLS] / [SEP] / ... not skipped.
- ``expand=False`` exports the no-expansion variant: each row keeps only its own (non-special) tokens.

`python_reference` computes what the exported module must return from `encode_query` (a test compares
the two). Only MiniLM-based (``dense_encoder.name == "minilm"``) D2S models can be exported.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import torch
from torch import nn

from lsr.errors import InvalidInputError, MissingFileError

FORMATS = ("torchscript", "onnx")
MODEL_FILES = {"torchscript": "model.pt", "onnx": "model.onnx"}
EXPORT_CONFIG = "export.json"
ZIP_NAME = "model.zip"
DEFAULT_MAX_TERMS = 1024
MAX_LENGTH = 128  # MiniLM's (the tokenizer's truncation in `MiniLMEncoder`)


@dataclass
class ExportConfig:
    """What `export.json` records beside the model zip (`register_local_model` reads it)."""

    format: str
    model_hash: str
    source: str
    expand: bool = True
    max_terms: int = DEFAULT_MAX_TERMS
    min_weight: float = 0.0
    max_length: int = MAX_LENGTH
    vocab_size: int = 30522
    zip_sha256: str = ""

    @classmethod
    def load(cls, directory: str | Path) -> "ExportConfig":
        path = Path(directory) / EXPORT_CONFIG
        if not path.is_file():
            raise MissingFileError(f"{directory} is not an exported model (no {EXPORT_CONFIG}); "
                                   "make one with `lsr opensearch export --model DIR --out DIR`.")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})


class QueryWeights(nn.Module):
    """ids + mask -> [batch, vocab] query weights (module docstring); the engine-neutral core."""

    def __init__(self, bert: nn.Module, head: nn.Module, min_weight: float, max_terms: int,
                 expand: bool, sep_id: int, max_length: int = MAX_LENGTH):
        super().__init__()
        self.bert, self.head = bert, head
        self.min_weight, self.max_terms, self.expand = float(min_weight), int(max_terms), bool(expand)
        self.sep_id, self.max_length = int(sep_id), int(max_length)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        input_ids, attention_mask = input_ids.long(), attention_mask.long()
        # the dense path sees what MiniLMEncoder's tokenizer gives: at most max_length tokens, [SEP] last
        ids = input_ids[:, :self.max_length]
        mask = attention_mask[:, :self.max_length]
        over = attention_mask.sum(1) > self.max_length
        last = torch.where(over, torch.full_like(ids[:, -1], self.sep_id), ids[:, -1])
        ids = torch.cat([ids[:, :-1], last.unsqueeze(1)], dim=1)  # no in-place write: ONNX-friendly
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        dense = pooled / pooled.norm(dim=1, keepdim=True)
        weights = self.head(dense)
        if not self.expand:  # only the query's own tokens (Vocabulary.token_ids): all but the added [CLS] / [SEP]
            positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
            inner = (positions >= 1) & (positions < attention_mask.sum(1, keepdim=True) - 1) & (attention_mask > 0)
            own = torch.zeros_like(weights).scatter_add(1, input_ids, inner.to(weights.dtype))
            weights = weights * (own > 0).to(weights.dtype)
        weights = torch.where(weights > self.min_weight, weights, torch.zeros_like(weights))
        values, indices = torch.topk(weights, min(self.max_terms, weights.shape[1]), dim=1)
        return torch.zeros_like(weights).scatter(1, indices, values)


class TorchScriptQuery(nn.Module):
    """The translator's TorchScript calling convention: one dict argument ``input1``."""

    def __init__(self, core: QueryWeights):
        super().__init__()
        self.core = core

    def forward(self, input1: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.core(input1["input_ids"], input1["attention_mask"])


def build_module(encoder, max_terms: int = DEFAULT_MAX_TERMS, expand: bool = True) -> QueryWeights:
    """The core module of a loaded `D2SEncoder` (MiniLM dense encoder), eager attention, in eval mode."""
    from transformers import AutoModel

    record = encoder.model.config.dense_encoder or {}
    if record.get("name") != "minilm" or encoder.model.config.query_encoder != "d2s":
        raise InvalidInputError(f"Only D2S models over MiniLM export to OpenSearch (this one: dense encoder "
                                f"{record or 'not recorded'}, queries {encoder.model.config.query_encoder!r}); "
                                "inference-free models register with `lsr opensearch register --inference-free`.")
    if max_terms < 1:
        raise InvalidInputError(f"max_terms must be >= 1, got {max_terms}.")
    dense = encoder.dense
    bert = AutoModel.from_pretrained(str(dense.path), local_files_only=True, attn_implementation="eager")
    tokenizer = dense.tokenizer
    head = encoder.model.to("cpu").eval()
    module = QueryWeights(bert.eval(), head, encoder.min_weight, max_terms, expand, tokenizer.sep_token_id, dense.max_length)
    return module.eval()


def _examples(tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    enc = tokenizer(["a dog catching a frisbee in the park", "two men"], padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def python_reference(encoder, texts: Sequence[str], max_terms: int = DEFAULT_MAX_TERMS,
                     expand: bool = True) -> np.ndarray:
    """[n, vocab] weights the exported module must return: `encode_query`, then the heaviest `max_terms`
    (`lsr.prune.cap_terms`, as `QueryRules` caps the Python path's queries)."""
    from lsr.prune import cap_terms

    batch = encoder.encode_query(list(texts), expand=expand)
    out = np.zeros((len(texts), encoder.vocab_size), np.float32)
    for row in range(len(texts)):
        vec = cap_terms(batch[row], max_terms)
        out[row, vec.ids] = vec.weights
    return out


# The node names a weight by decoding its id alone with tokenizer.json's decoder: this one gives exactly
# `lsr.backends.opensearch.features.escape_token` ('%' -> '%25', then '.' -> '%2E'; '##' kept), the names
# our rank_features indexes store.
NAMING_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "%"}, "content": "%25"},
    {"type": "Replace", "pattern": {"String": "."}, "content": "%2E"},
    {"type": "WordPiece", "prefix": "##", "cleanup": False}]}


def _write_tokenizer(encoder, path: Path) -> None:
    """The dense model's tokenizer.json, without fixed padding (the node pads to the batch's longest),
    truncating at 512 (the module truncates the dense path to 128 itself; no-expansion masks see 512), with
    `NAMING_DECODER` and its added tokens ([CLS], [SEP], ...) not special, so the node names every id as our
    indexes do and skips none."""
    source = Path(encoder.dense.path) / "tokenizer.json"
    if not source.is_file():
        raise MissingFileError(f"{source} is missing: the node needs the dense model's tokenizer.json.")
    data = json.loads(source.read_text())
    data["padding"] = None
    data["truncation"] = {"direction": "Right", "max_length": 512, "strategy": "LongestFirst", "stride": 0}
    data["decoder"] = NAMING_DECODER
    for token in data.get("added_tokens", []):  # decoded by name, not skipped ([CLS] keeps its weight)
        token["special"] = False
    path.write_text(json.dumps(data, ensure_ascii=False))


def _zip(model_file: Path, tokenizer_file: Path, out: Path) -> str:
    """model.zip = the one model file + tokenizer.json (deterministic); returns its SHA-256."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in (model_file, tokenizer_file):
            info = zipfile.ZipInfo(path.name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return hashlib.sha256(out.read_bytes()).hexdigest()


@torch.no_grad()
def export_query_model(encoder, out_dir: str | Path, fmt: str = "torchscript", max_terms: int = DEFAULT_MAX_TERMS,
                       expand: bool = True, source: str | Path = "") -> ExportConfig:
    """Write ``model.pt`` (or ``model.onnx``), ``tokenizer.json``, ``model.zip`` and ``export.json`` to `out_dir`
    for a loaded `D2SEncoder` (``D2SEncoder.from_pretrained(source)``)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    module = build_module(encoder, max_terms, expand)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_file = out / MODEL_FILES[fmt]
    ids, mask = _examples(encoder.dense.tokenizer)
    if fmt == "torchscript":
        traced = torch.jit.trace(TorchScriptQuery(module), ({"input_ids": ids, "attention_mask": mask},),
                                 strict=False, check_trace=False)
        traced.save(str(model_file))
    else:
        from lsr.encoders.export_onnx import export_onnx

        export_onnx(module, (ids, mask), model_file)
    tokenizer_file = out / "tokenizer.json"
    _write_tokenizer(encoder, tokenizer_file)
    digest = _zip(model_file, tokenizer_file, out / ZIP_NAME)
    config = ExportConfig(format=fmt, model_hash=encoder.provenance()["model_hash"], source=str(source),
                          expand=expand, max_terms=max_terms, min_weight=float(encoder.min_weight),
                          max_length=int(encoder.dense.max_length), vocab_size=int(encoder.vocab_size),
                          zip_sha256=digest)
    (out / EXPORT_CONFIG).write_text(json.dumps(asdict(config), indent=2, ensure_ascii=False))
    return config


def run_exported(out_dir: str | Path, texts: Sequence[str]) -> np.ndarray:
    """Run an export here, tokenizing as the node does (its tokenizer.json): [n, vocab] weights."""
    from tokenizers import Tokenizer

    out = Path(out_dir)
    config = ExportConfig.load(out)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encs = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encs], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encs], dtype=torch.long)
    if config.format == "torchscript":
        module = torch.jit.load(str(out / MODEL_FILES["torchscript"]))
        with torch.no_grad():
            return module({"input_ids": ids, "attention_mask": mask}).numpy()
    from lsr.encoders.export_onnx import run_onnx

    return run_onnx(out / MODEL_FILES["onnx"], ids.numpy(), mask.numpy())
