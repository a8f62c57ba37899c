"""Images -> sparse vectors, for either kind of frozen encoder.

A dense image-text encoder (BLIP, LAVIS) needs a trained D2S model to reach the vocabulary; a sparse
image encoder (EfficientNet label tokens) gets there by itself. Both split into a cacheable dense
`features` step and a cheap `to_sparse` step.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from lsr.d2s.model import D2SModel
from lsr.encoders.base import ImageInput, ImageTextEncoder, SparseImageEncoder
from lsr.errors import InvalidInputError
from lsr.sparse import SparseBatch


class ImageVectoriser:
    """Features (cached on disk by `name`) and sparse vectors of images for one encoder (+ D2S model)."""

    def __init__(self, encoder: ImageTextEncoder | SparseImageEncoder, model: D2SModel | None = None):
        self.encoder = encoder
        self.model = model
        self.sparse_native = isinstance(encoder, SparseImageEncoder)
        if self.sparse_native and model is not None:
            raise InvalidInputError(f"Encoder {encoder.name!r} writes sparse vectors itself; do not pass a D2S model.")
        if not self.sparse_native:
            if not isinstance(encoder, ImageTextEncoder):
                raise TypeError(f"{type(encoder).__name__} is neither an ImageTextEncoder nor a SparseImageEncoder.")
            if model is None:
                raise InvalidInputError(f"Encoder {encoder.name!r} gives dense vectors: pass a trained D2S model "
                                 "(--model DIR) to map them onto the vocabulary.")
            if model.config.dense_dim != encoder.dim:
                raise InvalidInputError(f"The D2S model expects {model.config.dense_dim}-d inputs but encoder "
                                 f"{encoder.name!r} gives {encoder.dim}-d vectors; train a D2S model on this encoder.")
        self.name = encoder.name
        self.dim = int(encoder.dim)
        self.signature = self.name if model is None else f"{self.name}|d2s:{model_fingerprint(model)}"

    def features(self, images: Sequence[ImageInput], batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        if self.sparse_native:
            return self.encoder.image_features(images, batch_size=batch_size, show_progress=show_progress)
        return self.encoder.encode_images(images, batch_size=batch_size, show_progress=show_progress)

    def to_sparse(self, features: np.ndarray) -> SparseBatch:
        if self.sparse_native:
            return self.encoder.features_to_sparse(features)
        return self.model.encode(features)


def model_fingerprint(model: D2SModel) -> str:
    """A short hash of a D2S model's parameters: changes whenever its weights do."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
