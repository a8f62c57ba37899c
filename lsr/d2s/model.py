"""The dense-to-sparse model (Nguyen et al., ECIR 2024), in one readable file.

    dense (d) -> Linear(d, h) -> LayerNorm(h) -> Linear(h, |V|) -> log(1 + relu(.))  -> sparse (|V|)

One model serves images and captions. A caption may be restricted to its own WordPiece ids
("no expansion"). The vocabulary projector starts from a local MLM head (`init="mlm"`) or, by default,
is tied to a local model's input word embeddings (`init="tied"`): BERT-family MLM decoders are tied to
these, so both give each output unit the meaning of its vocabulary token. Saved as config.json +
model.safetensors; nothing is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
import torch.nn.functional as F
from torch import nn

from lsr.d2s.sparse_backward import ActiveColumns, active_projection
from lsr.errors import InvalidInputError, ModelNotFoundError
from lsr.sparse import VOCAB_SIZE, SparseBatch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class D2SConfig:
    dense_dim: int = 384
    hidden_dim: int = 384
    vocab_size: int = VOCAB_SIZE
    init: str = "tied"  # "tied" (input word embeddings), "mlm" (an MLM head) or "random"
    init_source: str | None = None  # local directory the projector was initialised from (informational)
    layer_norm_eps: float = 1e-12
    min_weight: float = 0.0  # static pruning at encode time: weights <= min_weight are dropped (0 keeps all)
    # the frozen dense encoder whose vectors it was trained on: {"name": "minilm", "path": None (its offline
    # package) or a local directory / checkpoint}; `D2SEncoder.from_pretrained` builds it from this
    dense_encoder: dict | None = None
    # "d2s": queries through the dense encoder + projection; "inference-free": queries by a token-weight table
    # saved beside the model (`lsr.encoders.inference_free`), documents through the projection
    query_encoder: str = "d2s"
    # joint training (`lsr train --objective joint`): a trainable copy of the dense model's final projection
    # (d x d, initialised to the identity) in front of the sparse head; its output is also a dense retriever
    dense_head: bool = False
    model_type: str = "d2s"

    @classmethod
    def from_dict(cls, data: dict) -> "D2SConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class D2SModel(nn.Module):
    """Projects dense vectors onto non-negative weights over the vocabulary."""

    def __init__(self, config: D2SConfig | None = None):
        super().__init__()
        self.config = config or D2SConfig()
        c = self.config
        self.dense_head = nn.Linear(c.dense_dim, c.dense_dim) if c.dense_head else None
        if self.dense_head is not None:
            with torch.no_grad():
                self.dense_head.weight.copy_(torch.eye(c.dense_dim))
                self.dense_head.bias.zero_()
        self.proj = nn.Linear(c.dense_dim, c.hidden_dim)
        self.layer_norm = nn.LayerNorm(c.hidden_dim, eps=c.layer_norm_eps)
        self.vocab_projector = nn.Linear(c.hidden_dim, c.vocab_size)

    def add_dense_head(self) -> None:
        """Give a model (fresh or trained) the identity-initialised dense head of joint training."""
        if self.dense_head is None:
            self.config.dense_head = True
            d = self.config.dense_dim
            self.dense_head = nn.Linear(d, d).to(self.proj.weight.device)
            with torch.no_grad():
                self.dense_head.weight.copy_(torch.eye(d))
                self.dense_head.bias.zero_()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_word_embeddings(cls, model_dir: str | Path, dense_dim: int, hidden_dim: int | None = None) -> "D2SModel":
        """Tie the projector to the input word-embedding matrix E of a local model (e.g. MiniLM's 30522 x 384).

        With `hidden_dim` below E's width h the projector is E V_k (k = `hidden_dim`, V_k the top-k right
        singular vectors of E): every logit is still a word embedding times a hidden vector, with the hidden
        vector kept in E's k-dimensional principal subspace. Training then costs about k / h of the vocabulary
        products (`benchmarks/bench_training.py`)."""
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
        emb = encoder.get_input_embeddings().weight.detach().clone()
        width = emb.shape[1]
        hidden = width if hidden_dim is None else int(hidden_dim)
        if not 0 < hidden <= width:
            raise InvalidInputError(f"hidden_dim must be in 1..{width} (the width of {model_dir}'s word embeddings) for "
                             f"the tied init, got {hidden_dim}; use init='random' for other sizes.")
        if hidden < width:
            _, _, vh = torch.linalg.svd(emb, full_matrices=False)
            emb = emb @ vh[:hidden].t()
        model = cls(D2SConfig(dense_dim=dense_dim, hidden_dim=hidden, vocab_size=emb.shape[0],
                              init="tied", init_source=str(model_dir)))
        with torch.no_grad():
            model.vocab_projector.weight.copy_(emb)
            model.vocab_projector.bias.zero_()
        return model

    @classmethod
    def from_mlm_head(cls, model_dir: str | Path, dense_dim: int) -> "D2SModel":
        """Initialise the projector (and LayerNorm, where the head has one) from a local MLM head."""
        from transformers import AutoModelForMaskedLM

        mlm = AutoModelForMaskedLM.from_pretrained(str(model_dir), local_files_only=True)
        decoder = mlm.get_output_embeddings()
        if decoder is None:
            raise InvalidInputError(f"{model_dir} has no MLM output layer; use init='tied' instead.")
        weight = decoder.weight.detach().clone()
        bias = getattr(decoder, "bias", None)
        if bias is None:  # BERT keeps the decoder bias on the prediction head
            bias = getattr(getattr(getattr(mlm, "cls", None), "predictions", None), "bias", None)
        model = cls(D2SConfig(dense_dim=dense_dim, hidden_dim=weight.shape[1], vocab_size=weight.shape[0],
                              init="mlm", init_source=str(model_dir)))
        with torch.no_grad():
            model.vocab_projector.weight.copy_(weight)
            model.vocab_projector.bias.copy_(bias.detach() if bias is not None else torch.zeros(weight.shape[0]))
            head_norm = _find_head_layer_norm(mlm, weight.shape[1])
            if head_norm is not None:
                model.layer_norm.load_state_dict(head_norm.state_dict())
        return model

    # ---- forward ------------------------------------------------------------------------------
    def dense(self, dense: torch.Tensor) -> torch.Tensor:
        """The jointly trained dense vectors (the frozen ones when the model has no dense head)."""
        return dense if self.dense_head is None else self.dense_head(dense)

    def hidden(self, dense: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.proj(self.dense(dense)))

    def logits(self, dense: torch.Tensor) -> torch.Tensor:
        return self.vocab_projector(self.hidden(dense))

    def forward(self, dense: torch.Tensor, token_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Sparse weights (batch, vocab). With `token_ids` (batch, L; -1 = padding), each row keeps only
        its own tokens (no expansion)."""
        weights = torch.log1p(torch.relu(self.logits(dense)))
        if token_ids is not None:
            weights = weights * token_mask(token_ids, weights.shape[1], weights.dtype)
        return weights

    def active(self, dense: torch.Tensor) -> ActiveColumns:
        """The same weights as `forward` (expanded), kept as the batch's active columns only: what training
        uses, since nothing (batch x vocab) is then kept for backward (`lsr.d2s.sparse_backward`)."""
        return active_projection(self.hidden(dense), self.vocab_projector)

    @torch.inference_mode()
    def dense_vectors(self, dense: np.ndarray | torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        """The vectors re-ranking and hybrid search score with (float32): the jointly trained dense head's,
        L2-normalised, when the model has one, else the frozen vectors as given (the encoders normalise them)."""
        dense = np.asarray(dense, dtype=np.float32)
        if dense.ndim != 2 or dense.shape[1] != self.config.dense_dim:
            raise InvalidInputError(f"Expected dense vectors of shape (n, {self.config.dense_dim}), got {dense.shape}.")
        if self.dense_head is None:
            return dense
        device = next(self.parameters()).device
        parts = [F.normalize(self.dense(torch.from_numpy(dense[i:i + batch_size]).to(device)), dim=1).cpu().numpy()
                 for i in range(0, len(dense), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.config.dense_dim), dtype=np.float32)

    @torch.inference_mode()
    def encode(self, dense: np.ndarray | torch.Tensor, token_ids: Sequence[np.ndarray] | None = None,
               batch_size: int = 1024, device: str | torch.device | None = None,
               min_weight: float | None = None) -> SparseBatch:
        """Encode dense vectors into a `SparseBatch`; `token_ids` (one array per row) means no expansion.

        Weights <= `min_weight` (default: the config's, 0) are dropped: static pruning, which trades a
        little quality for fewer postings and FLOPs, applied the same way to queries and documents.
        """
        threshold = self.config.min_weight if min_weight is None else float(min_weight)
        if threshold < 0:
            raise InvalidInputError(f"min_weight must be >= 0, got {threshold}.")
        device = torch.device(device) if device else next(self.parameters()).device
        was_training = self.training
        self.eval()
        dense = torch.as_tensor(np.asarray(dense, dtype=np.float32))
        if dense.ndim != 2 or dense.shape[1] != self.config.dense_dim:
            raise InvalidInputError(f"Expected dense vectors of shape (n, {self.config.dense_dim}), got {tuple(dense.shape)}.")
        if not torch.isfinite(dense).all():
            raise InvalidInputError("Dense input contains NaN or inf; fix or drop those rows before encoding.")
        parts = []
        for start in range(0, len(dense), batch_size):
            chunk = dense[start:start + batch_size].to(device)
            ids = None if token_ids is None else pad_token_ids(token_ids[start:start + batch_size]).to(device)
            parts.append(SparseBatch.from_dense(self(chunk, ids), threshold=threshold))
        self.train(was_training)
        if not parts:
            return SparseBatch.from_vectors([], self.config.vocab_size)
        return SparseBatch.vstack(parts)

    # ---- persistence --------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "D2SModel":
        directory = Path(directory)
        weights = directory / WEIGHTS_NAME
        if not (directory / CONFIG_NAME).is_file() or not weights.is_file():
            raise ModelNotFoundError(
                f"{directory} is not a saved D2S model: it needs {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(train one with `lsr train`)."
            )
        try:
            raw = json.loads((directory / CONFIG_NAME).read_text())
        except ValueError as exc:
            raise InvalidInputError(f"{directory / CONFIG_NAME} is not valid JSON ({exc}); restore or retrain the model.") from None
        if not isinstance(raw, dict) or raw.get("model_type", "d2s") != "d2s":
            kind = raw.get("model_type") if isinstance(raw, dict) else type(raw).__name__
            raise InvalidInputError(f"{directory / CONFIG_NAME} describes a {kind!r} model, not a D2S model; pass the "
                             "directory `lsr train` wrote (config.json + model.safetensors).")
        model = cls(D2SConfig.from_dict(raw))
        try:
            state = load_file(str(weights), device=str(device))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for damaged files
            raise InvalidInputError(f"{weights} cannot be read ({exc}): the file is damaged or not safetensors; "
                             "restore or retrain the model.") from None
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise InvalidInputError(f"{weights} does not fit {directory / CONFIG_NAME} (dense_dim {model.config.dense_dim}, "
                             f"hidden {model.config.hidden_dim}, vocab {model.config.vocab_size}): "
                             f"{str(exc).splitlines()[0]}") from None
        return model.to(device).eval()


def pad_token_ids(token_ids: Sequence[np.ndarray]) -> torch.Tensor:
    """Pad ragged token-id arrays into a (batch, L) long tensor with -1 as padding."""
    width = max((len(t) for t in token_ids), default=0)
    out = torch.full((len(token_ids), max(width, 1)), -1, dtype=torch.long)
    for i, t in enumerate(token_ids):
        if len(t):
            out[i, : len(t)] = torch.as_tensor(np.asarray(t, dtype=np.int64))
    return out


def token_mask(token_ids: torch.Tensor, vocab_size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A (batch, vocab) 0/1 mask that is 1 at each row's own token ids (-1 entries are padding)."""
    mask = torch.zeros(token_ids.shape[0], vocab_size + 1, dtype=dtype, device=token_ids.device)
    ids = torch.where(token_ids < 0, torch.full_like(token_ids, vocab_size), token_ids)
    mask.scatter_(1, ids, 1.0)
    return mask[:, :vocab_size]


def _find_head_layer_norm(mlm: nn.Module, hidden: int) -> nn.LayerNorm | None:
    """The LayerNorm of an MLM head's transform (BERT: cls.predictions.transform.LayerNorm;
    DistilBERT: vocab_layer_norm), if the model has one of the right size."""
    for name, module in mlm.named_modules():
        if isinstance(module, nn.LayerNorm) and module.normalized_shape == (hidden,) and (
            "predictions" in name or "vocab_layer_norm" in name or name.startswith("lm_head")
        ):
            return module
    return None
