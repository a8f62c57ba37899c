"""One entry point for every source of dense pairs: `load_pairs(spec, split)`.

Specs: `proxy:f30k` / `proxy:coco` (the caption proxy), `keywords:f30k` / `keywords:coco` (the caption
proxy with two- or three-word keyword queries, `lsr.data.keywords`), `d2s:FOLDER` (public D2S parquet layout),
`npy:FOLDER` (plain .npy layout; the split name is a sub-folder).
"""

from __future__ import annotations

from pathlib import Path

from lsr.data.split import PairedSplit
from lsr.errors import InvalidInputError


def load_pairs(spec: str, split: str, max_images: int | None = None, vocab=None) -> PairedSplit:
    """Load one split of a pair source; `max_images` keeps only the first images (a quick subset)."""
    kind, _, arg = spec.partition(":")
    if kind == "proxy":
        from lsr.data.caption_proxy import load_split

        data = load_split(arg or "f30k", split, vocab=vocab, max_images=max_images)
        return data
    if kind == "keywords":  # the caption proxy with keyword queries (lsr.data.keywords)
        from lsr.data.caption_proxy import load_split
        from lsr.data.keywords import keyword_split

        return keyword_split(load_split(arg or "f30k", split, vocab=vocab, max_images=max_images), vocab=vocab)
    if kind == "d2s":
        from lsr.data.pairs import load_d2s_parquet

        data = load_d2s_parquet(arg, split, vocab=vocab)
    elif kind == "npy":
        from lsr.data.pairs import load_npy_folder

        data = load_npy_folder(Path(arg) / split, vocab=vocab)
    else:
        raise InvalidInputError(f"Unknown data source {spec!r}; use proxy:f30k, proxy:coco, keywords:f30k, d2s:FOLDER or "
                         "npy:FOLDER.")
    return data.subset(max_images) if max_images else data


def load_split_spec(spec: str, vocab=None, max_images: int | None = None) -> PairedSplit:
    """Load a `SOURCE/SPLIT` spec such as `proxy:f30k/test` or `d2s:/data/blip-embs/val`."""
    source, _, split = spec.rpartition("/")
    if not source or not split:
        raise InvalidInputError(f"{spec!r} is not SOURCE/SPLIT; write e.g. proxy:f30k/test or d2s:FOLDER/test.")
    return load_pairs(source, split, max_images=max_images, vocab=vocab)
