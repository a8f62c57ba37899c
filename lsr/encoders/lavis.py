"""ALBEF and BLIP feature extractors through Salesforce LAVIS, in the encoding environment that
`scripts/lavis-env.sh` builds.

LAVIS pins old libraries (transformers 4.26, timm 0.4.12, numpy<2), so it lives in its own environment that
only runs `lsr encode`; it is imported only when a `LavisEncoder` is built. Everything loads from local files:
the checkpoint (.pth, e.g. BLIP's model_base_capfilt_large.pth or ALBEF.pth) and a local
bert-base-uncased tokenizer directory (default: the offline MiniLM package's). LAVIS's own builders
download BERT and ViT weights from the network; here the networks are built from LAVIS's shipped
configs without weights, then the checkpoint is loaded into them.

Embeddings are the ITC ones: the CLS token of each modality through its projection, L2-normalised.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lsr.encoders.base import CaptionTokens, ImageInput, check_texts, encode_image_batches

from lsr.vectors import l2_normalise
from lsr.devices import resolve_device
from lsr.errors import InvalidInputError, MissingFileError
from lsr.vocab import Vocabulary, default_tokenizer_dir

INSTALL_HINT = (
    "LAVIS is not installed here. It runs in its own environment (it pins transformers 4.26 and numpy<2, which "
    "conflict with this package's core): build it with `bash scripts/lavis-env.sh` and run "
    "`~/.cache/lsr/lavis-env/bin/python -m lsr.cli encode --encoder lavis-albef ...` there."
)
MODELS = {"albef": "albef_feature_extractor", "blip": "blip_feature_extractor"}


def import_lavis():
    """The `lavis` package, or an ImportError that says how to install it."""
    try:
        import lavis  # noqa: F401
        from lavis.common.registry import registry
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return registry


class LavisEncoder(CaptionTokens):
    """Frozen ALBEF or BLIP (base) ITC dual encoder from a local LAVIS checkpoint."""

    def __init__(self, family: str, checkpoint: str | Path, tokenizer_dir: str | Path | None = None,
                 device: str | None = None, model_type: str = "base", vocab: Vocabulary | None = None):
        if family not in MODELS:
            raise InvalidInputError(f"family must be one of {sorted(MODELS)}, got {family!r}.")
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise MissingFileError(f"LAVIS checkpoint {checkpoint} does not exist; pass a local .pth file.")
        tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir is not None else default_tokenizer_dir()
        registry = import_lavis()
        self.family = family
        self.device = resolve_device(device)
        self.model, cfg = _build(registry, family, model_type, checkpoint, tokenizer_dir)
        self.model = self.model.to(self.device).eval()
        self.image_processor, self.text_processor = _processors(registry, cfg)
        self.dim = int(self.model.vision_proj.out_features)
        self.name = f"lavis-{family}-{model_type}-{checkpoint.stem}"
        self._vocab = vocab

    def encode_images(self, images: Sequence[ImageInput], batch_size: int = 32,
                      show_progress: bool = False) -> np.ndarray:
        return self.encode_images_features(images, batch_size, show_progress)[0]

    def encode_texts(self, texts: Sequence[str], batch_size: int = 128, show_progress: bool = False) -> np.ndarray:
        return self.encode_texts_features(texts, batch_size, show_progress)[0]

    @torch.inference_mode()
    def encode_images_features(self, images: Sequence[ImageInput], batch_size: int = 32,
                               show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised ITC embeddings, the vision [CLS] vectors before `vision_proj`, e.g. 768-d)."""
        hidden = int(self.model.vision_proj.in_features)

        def forward(chunk):
            pixels = torch.stack([self.image_processor(img) for img in chunk]).to(self.device)
            cls = self.model.visual_encoder.forward_features(pixels)[:, 0]
            return torch.cat([self.model.vision_proj(cls), cls], dim=1)

        out = encode_image_batches(images, batch_size, self.dim + hidden, forward, show_progress)
        return l2_normalise(out[:, :self.dim], f"LAVIS {self.family} image embeddings"), out[:, self.dim:]

    @torch.inference_mode()
    def encode_texts_features(self, texts: Sequence[str], batch_size: int = 128,
                              show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(L2-normalised ITC caption embeddings, the text [CLS] vectors before `text_proj`)."""
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pre = np.zeros((len(texts), int(self.model.text_proj.in_features)), dtype=np.float32)
        for start in tqdm(range(0, len(texts), batch_size), desc="encode texts", disable=not show_progress,
                          unit="batch"):
            chunk = [self.text_processor(t) for t in texts[start:start + batch_size]]
            features = self.model.extract_features({"image": None, "text_input": chunk}, mode="text")
            out[start:start + len(chunk)] = features.text_embeds_proj[:, 0].float().cpu().numpy()
            pre[start:start + len(chunk)] = features.text_embeds[:, 0].float().cpu().numpy()
        return l2_normalise(out, f"LAVIS {self.family} text embeddings"), pre


def _build(registry, family: str, model_type: str, checkpoint: Path | None, tokenizer_dir: Path):
    """Build the LAVIS feature extractor offline: shipped configs, no pretrained downloads, local tokenizer."""
    from omegaconf import OmegaConf
    from transformers import BertConfig

    model_cls = registry.get_model_class(MODELS[family])
    cfg = OmegaConf.load(model_cls.default_config_path(model_type))
    mcfg = cfg.model
    from lavis.common.utils import get_abs_path
    from lavis.models.vit import VisionTransformerEncoder

    image_encoder = VisionTransformerEncoder.from_config(mcfg, from_pretrained=False)
    med_config = BertConfig.from_json_file(get_abs_path(mcfg["med_config_path"]))
    if family == "albef":
        from lavis.models.med import BertForMaskedLM

        med_config.fusion_layer = 6
        text_encoder = BertForMaskedLM(med_config)
    else:
        from lavis.models.med import XBertEncoder

        text_encoder = XBertEncoder(config=med_config)
    with _local_tokenizer(model_cls, tokenizer_dir, family):
        model = model_cls(image_encoder=image_encoder, text_encoder=text_encoder,
                          embed_dim=mcfg.get("embed_dim", 256), max_txt_len=mcfg.get("max_txt_len", 30))
    if checkpoint is None:  # random weights: tests, and `save_random_checkpoint`
        return model, cfg
    if family == "albef":
        model.load_from_pretrained(url_or_filename=str(checkpoint), rename_text_keys=False)
    else:
        model.load_from_pretrained(url_or_filename=str(checkpoint))
    return model, cfg


def save_random_checkpoint(family: str, path: str | Path, tokenizer_dir: str | Path | None = None,
                           model_type: str = "base", seed: int = 0) -> Path:
    """A checkpoint of a randomly initialised ALBEF / BLIP feature extractor in LAVIS's format
    ({"model": state_dict}), built offline: stands in for a user's checkpoint in tests."""
    if family not in MODELS:
        raise InvalidInputError(f"family must be one of {sorted(MODELS)}, got {family!r}.")
    torch.manual_seed(seed)
    tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir is not None else default_tokenizer_dir()
    model, _ = _build(import_lavis(), family, model_type, None, tokenizer_dir)
    path = Path(path)
    torch.save({"model": model.state_dict()}, path)
    return path


@contextmanager
def _local_tokenizer(model_cls, tokenizer_dir: Path, family: str) -> Iterator[None]:
    """Make `model_cls.init_tokenizer` read a local bert-base-uncased directory instead of the hub."""
    from transformers import BertTokenizer

    def init_tokenizer(cls):
        tokenizer = BertTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        if family == "blip":  # the special tokens BLIP adds (lavis.models.blip_models.blip.BlipBase)
            tokenizer.add_special_tokens({"bos_token": "[DEC]"})
            tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
            tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
        return tokenizer

    original = model_cls.__dict__.get("init_tokenizer")
    model_cls.init_tokenizer = classmethod(init_tokenizer)
    try:
        yield
    finally:
        if original is None:
            del model_cls.init_tokenizer
        else:
            model_cls.init_tokenizer = original


def _processors(registry, cfg):
    """LAVIS's own eval image and caption processors from the model config."""
    vis_cfg = cfg.preprocess.vis_processor.eval
    txt_cfg = cfg.preprocess.text_processor.eval
    image = registry.get_processor_class(vis_cfg.name).from_config(vis_cfg)
    text = registry.get_processor_class(txt_cfg.name).from_config(txt_cfg)
    return image, text
