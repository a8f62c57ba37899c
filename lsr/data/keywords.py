"""Keyword-style queries from held-out captions: what users type (two or three words), not a caption.

`keywords:f30k/test` is the caption-proxy split `proxy:f30k/test` with each caption query replaced by two or
three of its content words (function words, numbers and words under three letters left out), chosen with a
seed per query and kept in caption order: "A man in a blue shirt is riding a bike" -> "shirt riding bike".
The documents (caption 0 of each image) are unchanged; the keyword queries are encoded by the same frozen
text encoder and cached like the captions. Queries left with no content word are dropped (counted in
`meta`).
"""

from __future__ import annotations

import hashlib
import logging
import re

import numpy as np

from lsr.data.cache import atomic_save_npy, cache_dir, load_ragged, save_ragged
from lsr.data.split import PairedSplit
from lsr.errors import InvalidInputError

log = logging.getLogger(__name__)

FUNCTION_WORDS = frozenset("""
a about above across after against along among an and another are around as at away be been before behind
being below beneath beside between both but by can down during each either few for from front has have
having her hers him his how in inside into is it its itself just like many more most near next nor not of
off on one onto or other others out outside over own same several she some such than that the their them
then there these they this those through three to together top toward towards two under up upon very was
were what when where which while who whom whose why with within without four five six other yet you your
""".split())
_WORD = re.compile(r"[a-z]+")


def keywords_of(caption: str, rng: np.random.Generator, low: int = 2, high: int = 3) -> str:
    """Two or three (`low`..`high`) content words of `caption`, in caption order; "" when it has none."""
    words = list(dict.fromkeys(w for w in _WORD.findall(caption.lower()) if len(w) >= 3 and w not in FUNCTION_WORDS))
    if not words:
        return ""
    k = min(len(words), int(rng.integers(low, high + 1)))
    keep = sorted(rng.choice(len(words), size=k, replace=False))
    return " ".join(words[i] for i in keep)


def keyword_split(split: PairedSplit, seed: int = 0, encoder=None, vocab=None) -> PairedSplit:
    """`split` with keyword queries (see the module docstring), encoded with `encoder` (default MiniLM)."""
    if split.query_texts is None:
        raise InvalidInputError(f"{split.name} has no query texts to take keywords from; use a caption-proxy split.")
    rng = np.random.default_rng(seed)
    texts = [keywords_of(t, rng) for t in split.query_texts]
    keep = [i for i, t in enumerate(texts) if t]
    texts = [texts[i] for i in keep]
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    folder = cache_dir() / "caption_proxy"
    emb_path, tok_path = folder / f"keywords_{split.name}_{key}.npy", folder / f"keywords_{split.name}_{key}_tokens.npz"
    if emb_path.exists() and tok_path.exists():
        emb, tokens = np.load(emb_path), load_ragged(tok_path)
    else:
        if encoder is None:
            from lsr.encoders.minilm import MiniLMEncoder

            encoder = MiniLMEncoder()
        if vocab is None:
            from lsr.vocab import Vocabulary

            vocab = Vocabulary()
        log.info("encoding %d keyword queries of %s (cached afterwards in %s)", len(texts), split.name, folder)
        folder.mkdir(parents=True, exist_ok=True)
        emb = encoder.encode_texts(texts, show_progress=False)
        tokens = vocab.token_ids(texts)
        save_ragged(tok_path, tokens)
        atomic_save_npy(emb_path, emb)
    return PairedSplit(
        name=f"{split.name}-keywords", doc_ids=split.doc_ids, doc_emb=split.doc_emb,
        query_ids=[split.query_ids[i] for i in keep], query_emb=emb, query_doc=split.query_doc[keep],
        query_tokens=list(tokens), doc_texts=split.doc_texts, query_texts=texts,
        meta={**(split.meta or {}), "queries": "keywords (2-3 content words of each caption, seed "
              f"{seed})", "dropped_queries": len(split.query_ids) - len(keep)},
    )
