"""BLIP (Li et al., 2022) image-text retrieval encoder through Hugging Face `transformers`, frozen.

Embeddings are BLIP's image-text-contrastive (ITC) ones: the CLS token of the vision transformer
through `vision_proj`, and the CLS token of the unimodal text encoder through `text_proj`, both
L2-normalised into one `image_text_hidden_size`-d space (256 for the released checkpoints).
Loaded from a local directory holding `BlipForImageTextRetrieval` weights, a tokenizer and an image
processor config (e.g. a saved copy of Salesforce/blip-itm-base-coco); a hub name is only accepted
with `allow_download=True`. Images are preprocessed with transformers' PIL-based BLIP processor.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lsr.encoders.base import CaptionTokens, ImageInput, check_texts, encode_image_batches

from lsr.vectors import batches, l2_normalise
from lsr.devices import resolve_device
from lsr.errors import MissingFileError
from lsr.vocab import Vocabulary


def pil_image_processor_class():
    """transformers' PIL-backed BLIP image processor (`BlipImageProcessorPil` from v5, before that
    `BlipImageProcessor` itself), so torchvision is never needed."""
    try:
        from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
    except ImportError:
        from transformers import BlipImageProcessor as BlipImageProcessorPil
    return BlipImageProcessorPil


class BlipEncoder(CaptionTokens):
    """Frozen BLIP ITC dual encoder: `encode_images` and `encode_texts` share one space."""

    def __init__(self, model_dir: str | Path, device: str | None = None, max_length: int = 35,
                 allow_download: bool = False, vocab: Vocabulary | None = None, name: str | None = None):
        from transformers import AutoTokenizer, BlipForImageTextRetrieval

        local = Path(model_dir).is_dir()
        if not local and not allow_download:
            raise MissingFileError(
                f"BLIP directory {model_dir} does not exist; pass a local directory with the model, tokenizer "
                "and preprocessor_config.json (or a hub name together with allow_download=True)."
            )
        if local:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        source = str(model_dir)
        only_local = not allow_download
        self.device = resolve_device(device)
        self.model = BlipForImageTextRetrieval.from_pretrained(source, local_files_only=only_local)
        self.model = self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=only_local)
        self.processor = pil_image_processor_class().from_pretrained(source, local_files_only=only_local)
        self.max_length = max_length
        self.dim = int(self.model.config.image_text_hidden_size)
        self.name = name or f"blip-{Path(source).name}"
        self._vocab = vocab

    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 32,
                      show_progress: bool = False) -> np.ndarray:
        """L2-normalised (n, dim) float32 image embeddings."""
        return self.encode_images_features(images, batch_size, show_progress)[0]

    def encode_texts(self, texts: Sequence[str], batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
        """L2-normalised (n, dim) float32 caption embeddings (batches of length-sorted texts)."""
        return self.encode_texts_features(texts, batch_size, show_progress)[0]

    @torch.inference_mode()
    def encode_images_features(self, images: Sequence[ImageInput], batch_size: int = 32,
                               show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised projected embeddings, the vision [CLS] vectors before the projection)."""
        hidden = self.model.vision_model.config.hidden_size

        def forward(chunk):
            pixels = self.processor(images=chunk, return_tensors="pt")["pixel_values"]
            cls = self.model.vision_model(pixel_values=pixels.to(self.device))[0][:, 0]
            return torch.cat([self.model.vision_proj(cls), cls], dim=1)

        out = encode_image_batches(images, batch_size, self.dim + hidden, forward, show_progress)
        return l2_normalise(out[:, :self.dim], "BLIP image embeddings"), out[:, self.dim:]

    @torch.inference_mode()
    def encode_texts_features(self, texts: Sequence[str], batch_size: int = 128,
                              show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised projected caption embeddings, the text [CLS] vectors before the projection)."""
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pre = np.zeros((len(texts), self.model.text_encoder.config.hidden_size), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for idx in tqdm(batches(order, batch_size), desc="encode texts", disable=not show_progress,
                        total=-(-len(texts) // batch_size), unit="batch"):
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            cls = self.model.text_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])[0][:, 0]
            out[idx] = self.model.text_proj(cls).float().cpu().numpy()
            pre[idx] = cls.float().cpu().numpy()
        return l2_normalise(out, "BLIP text embeddings"), pre
