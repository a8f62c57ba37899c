"""Keyword-style queries (`keywords:f30k/test`): two or three content words of each held-out caption."""

from __future__ import annotations

import numpy as np

from lsr.data.keywords import FUNCTION_WORDS, keyword_split, keywords_of
from lsr.data.split import PairedSplit


def test_keywords_are_two_or_three_content_words_in_caption_order():
    rng = np.random.default_rng(0)
    caption = "A man in a blue shirt is riding a red bike down the street while two dogs watch."
    words = caption.lower().replace(".", "").split()
    for _ in range(50):
        picked = keywords_of(caption, rng).split()
        assert 2 <= len(picked) <= 3
        assert not set(picked) & FUNCTION_WORDS and all(len(w) >= 3 for w in picked)
        positions = [words.index(w) for w in picked]
        assert positions == sorted(positions)  # caption order
    assert keywords_of("a the of in", rng) == ""
    assert keywords_of("Children playing", rng) == "children playing"


def test_the_same_seed_gives_the_same_keywords():
    captions = ["Two dogs play in the snow near a fence", "A woman with a red umbrella walks in the rain"]
    first = [keywords_of(c, np.random.default_rng(7)) for c in captions]
    assert first == [keywords_of(c, np.random.default_rng(7)) for c in captions]


class _CountingEncoder:
    path = "test-encoder"

    def __init__(self):
        self.calls = 0

    def encode_texts(self, texts, show_progress=False):
        self.calls += 1
        rng = np.random.default_rng(len(texts))
        out = rng.normal(size=(len(texts), 4)).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_keyword_split_keeps_documents_drops_empty_queries_and_caches(tmp_path, monkeypatch, vocab):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("LSR_CACHE", str(tmp_path / "lsr"))
    texts = ["Two dogs play in the snow", "a the of", "A woman walks in the rain with an umbrella"]
    split = PairedSplit(name="toy", doc_ids=["i0", "i1"], doc_emb=np.eye(2, 4, dtype=np.float32),
                        query_ids=["q0", "q1", "q2"], query_emb=np.ones((3, 4), np.float32),
                        query_doc=np.array([0, 1, 1]), query_tokens=[np.array([1])] * 3, query_texts=texts)
    encoder = _CountingEncoder()
    keywords = keyword_split(split, encoder=encoder, vocab=vocab)
    assert keywords.name == "toy-keywords" and keywords.doc_ids == split.doc_ids
    assert keywords.query_ids == ["q0", "q2"] and list(keywords.query_doc) == [0, 1]
    assert keywords.meta["dropped_queries"] == 1
    assert all(2 <= len(t.split()) <= 3 for t in keywords.query_texts)
    assert {vocab.token(int(t)) for t in keywords.query_tokens[0]} == set(keywords.query_texts[0].split())
    again = keyword_split(split, encoder=encoder, vocab=vocab)
    assert encoder.calls == 1 and np.array_equal(again.query_emb, keywords.query_emb)  # from the cache
