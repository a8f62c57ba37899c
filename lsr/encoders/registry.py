"""Frozen image encoders by name, for the command line and scripts."""

from __future__ import annotations

from pathlib import Path

from lsr.encoders.base import ImageTextEncoder, SparseImageEncoder, TextEncoder
from lsr.encoders.names import IMAGE_ENCODERS
from lsr.errors import InvalidInputError

__all__ = ["IMAGE_ENCODERS", "load_dense_encoder", "load_image_encoder"]


def load_image_encoder(name: str, path: str | Path | None = None, device: str | None = None,
                       tokenizer_dir: str | Path | None = None) -> ImageTextEncoder | SparseImageEncoder:
    """Build encoder `name` from local files: `path` is the weights file or directory it needs
    (optional for efficientnet-labels, whose weights come from an installed package)."""
    if name == "efficientnet-labels":
        from lsr.encoders.efficientnet_labels import EfficientNetLabelEncoder

        return EfficientNetLabelEncoder(weights_path=path, device=device)
    if name not in IMAGE_ENCODERS:
        raise InvalidInputError(f"Unknown image encoder {name!r}; choose one of {', '.join(IMAGE_ENCODERS)}.")
    if path is None:
        raise InvalidInputError(f"Encoder {name!r} needs --encoder-path: a local model directory or checkpoint file.")
    if name == "blip":
        from lsr.encoders.blip import BlipEncoder

        return BlipEncoder(path, device=device)
    from lsr.encoders.lavis import LavisEncoder

    return LavisEncoder(name.split("-", 1)[1], path, tokenizer_dir=tokenizer_dir, device=device)


def load_dense_encoder(name: str, path: str | Path | None = None, device: str | None = None,
                       tokenizer_dir: str | Path | None = None) -> TextEncoder:
    """A frozen dense encoder by the name a D2S model records: ``minilm`` (`path`: a local directory,
    default the offline package) or one of the dense image encoders above."""
    if name == "minilm":
        from lsr.encoders.minilm import MiniLMEncoder

        return MiniLMEncoder(path, device=device)
    if name == "efficientnet-labels":
        raise InvalidInputError("efficientnet-labels is a sparse encoder (no D2S model): use LabelTokenEncoder.")
    return load_image_encoder(name, path, device, tokenizer_dir)
