"""BLIP's image-text matching (ITM) head as the fine stage of two-stage retrieval.

This is how LAVIS produces its published BLIP retrieval numbers: the contrastive (ITC) embeddings pick
the top k candidates, then the ITM head, a cross-attention pass over the caption and the image patches,
re-scores each pair. The score is the head's match probability, softmax(itm logits)[:, 1]. The model is
transformers' `BlipForImageTextRetrieval`, loaded from a local directory (`lsr.encoders.blip`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from lsr.encoders.base import ImageInput, as_rgb_images, check_texts
from lsr.errors import InvalidInputError
from lsr.vectors import batches

if TYPE_CHECKING:
    from lsr.encoders.blip import BlipEncoder


class ITMScorer:
    """Match probabilities of (text, image) pairs from a BLIP retrieval model's ITM head."""

    def __init__(self, blip: "BlipEncoder", batch_size: int = 16):
        if not hasattr(blip.model, "itm_head"):
            raise InvalidInputError(f"{type(blip.model).__name__} has no ITM head; use a BlipForImageTextRetrieval model.")
        self.blip, self.batch_size = blip, batch_size

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str | None = None, batch_size: int = 16) -> "ITMScorer":
        """From a local BLIP retrieval directory (weights, tokenizer, preprocessor_config.json)."""
        from lsr.encoders.blip import BlipEncoder

        return cls(BlipEncoder(model_dir, device=device), batch_size)

    @torch.inference_mode()
    def score(self, text: str, images: Sequence[ImageInput]) -> np.ndarray:
        """The match probability of `text` with each image, float32 in [0, 1], in the order given."""
        text = check_texts([text])[0]
        blip = self.blip
        out = np.zeros(len(images), dtype=np.float32)
        done = 0
        for chunk in batches(list(images), self.batch_size):
            pixels = blip.processor(images=as_rgb_images(chunk), return_tensors="pt")["pixel_values"].to(blip.device)
            enc = blip.tokenizer([text] * len(chunk), padding=True, truncation=True, max_length=blip.max_length,
                                 return_tensors="pt").to(blip.device)
            logits = blip.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                pixel_values=pixels, use_itm_head=True).itm_score
            out[done:done + len(chunk)] = torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()
            done += len(chunk)
        return out
