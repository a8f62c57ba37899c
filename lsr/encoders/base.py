"""The encoder interfaces shared by frozen encoders (never trained here), and small helpers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence, Union, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from lsr.errors import InvalidInputError
from lsr.vectors import batches

if TYPE_CHECKING:  # Pillow is only needed by image encoders
    import torch
    from PIL import Image

    from lsr.sparse import SparseBatch, SparseVector
    from lsr.vocab import Vocabulary

ImageInput = Union[str, Path, "Image.Image"]


@runtime_checkable
class TextEncoder(Protocol):
    """Encodes texts into L2-normalised float32 vectors of a fixed dimension."""

    dim: int

    def encode_texts(self, texts: Sequence[str], batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
        ...


@runtime_checkable
class ImageTextEncoder(TextEncoder, Protocol):
    """A dual encoder: images and captions land in one space of `dim` L2-normalised float32 dimensions.

    `name` identifies the encoder and its weights (it keys the on-disk vector cache). Caption token ids
    are bert-base-uncased WordPiece ids, used to mask D2S output to a caption's own tokens.
    """

    name: str
    dim: int

    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 32,
                      show_progress: bool = False) -> np.ndarray:
        ...

    def caption_token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        ...


class CaptionTokens:
    """Caption token ids over the bert-base-uncased vocabulary (loaded on first use), for no-expansion masking.

    Mixed into encoders whose own tokenizer may differ from the sparse vocabulary.
    """

    _vocab: "Vocabulary | None" = None

    @property
    def vocab(self) -> "Vocabulary":
        if self._vocab is None:
            from lsr.vocab import Vocabulary

            self._vocab = Vocabulary()
        return self._vocab

    def caption_token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """bert-base-uncased ids of each caption (unique, sorted, no special tokens)."""
        return self.vocab.token_ids(check_texts(texts))


@runtime_checkable
class SparseImageEncoder(Protocol):
    """An image encoder that emits sparse vocabulary vectors itself (no D2S model needed).

    `image_features` is the cacheable dense part (`dim` floats per image); `features_to_sparse` turns
    it into vocabulary weights; `encode_query` maps a text query into the same vocabulary space.
    """

    name: str
    dim: int

    def image_features(self, images: Sequence[ImageInput], batch_size: int = 32,
                       show_progress: bool = False) -> np.ndarray:
        ...

    def features_to_sparse(self, features: np.ndarray) -> "SparseBatch":
        ...

    def encode_images_sparse(self, images: Sequence[ImageInput], batch_size: int = 32,
                             show_progress: bool = False) -> "SparseBatch":
        ...

    def encode_query(self, text: str) -> "SparseVector":
        ...


def encode_image_batches(images: Sequence[ImageInput], batch_size: int, dim: int,
                         forward: Callable[[list["Image.Image"]], "torch.Tensor"],
                         show_progress: bool = False) -> np.ndarray:
    """Run `forward` (RGB PIL images -> (b, dim) tensor) over batches; float32 (n, dim) rows in input order."""
    images = list(images)
    out = np.zeros((len(images), dim), dtype=np.float32)
    done = 0
    for chunk in tqdm(batches(images, batch_size), desc="encode images", disable=not show_progress,
                      total=-(-len(images) // batch_size), unit="batch"):
        out[done:done + len(chunk)] = forward(as_rgb_images(chunk)).float().cpu().numpy()
        done += len(chunk)
    return out


def as_rgb_images(images: Sequence[ImageInput]) -> list["Image.Image"]:
    """Open paths (with the safe loader of `lsr.encoders.image_io`) and convert PIL images to RGB."""
    from PIL import Image  # Pillow is an optional dependency: imported when images are encoded

    from lsr.encoders.image_io import open_rgb, to_rgb  # imports Pillow

    out = []
    for i, item in enumerate(images):
        if isinstance(item, Image.Image):
            out.append(to_rgb(item))
        elif isinstance(item, (str, Path)):
            out.append(open_rgb(item).image)
        else:
            raise TypeError(f"Image #{i} is a {type(item).__name__}; pass a file path or a PIL image.")
    return out


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list; an empty or non-string text is an error naming its position."""
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise InvalidInputError(f"Text #{i} is empty or not a string; remove it or give it words.")
    return texts
