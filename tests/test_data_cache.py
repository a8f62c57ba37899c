"""The caption-proxy cache is keyed on file contents: a copied or touched data folder keeps its cache."""

from __future__ import annotations

import os

import numpy as np

from lsr.data.caption_proxy import load_split


class CountingEncoder:
    path = "counting-encoder"

    def __init__(self):
        self.calls = 0

    def encode_texts(self, texts, show_progress=False):
        self.calls += 1
        return np.ones((len(texts), 4), dtype=np.float32)


class Vocab:
    def token_ids(self, texts):
        return [np.array([1, 2], dtype=np.int32) for _ in texts]


def write_split(root, captions):
    (root / "f30k").mkdir(parents=True, exist_ok=True)
    (root / "f30k" / "test_caps.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    (root / "f30k" / "test_ids.txt").write_text("\n".join(str(i // 5) for i in range(len(captions))) + "\n")


def test_a_touched_or_copied_data_folder_keeps_its_cache_and_changed_text_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("LSR_CACHE", str(tmp_path / "cache"))
    captions = [f"caption {i}" for i in range(10)]
    write_split(tmp_path / "a", captions)
    monkeypatch.setenv("LSR_DATA", str(tmp_path / "a"))
    encoder = CountingEncoder()
    assert len(load_split("f30k", "test", encoder, Vocab()).query_ids) == 8 and encoder.calls == 1
    caps = tmp_path / "a" / "f30k" / "test_caps.txt"
    os.utime(caps, (1_000_000, 1_000_000))  # touched
    load_split("f30k", "test", encoder, Vocab())
    write_split(tmp_path / "b", captions)  # a fresh copy elsewhere
    monkeypatch.setenv("LSR_DATA", str(tmp_path / "b"))
    load_split("f30k", "test", encoder, Vocab())
    assert encoder.calls == 1
    write_split(tmp_path / "b", captions[:9] + ["another caption"])  # same size class, other text
    load_split("f30k", "test", encoder, Vocab())
    assert encoder.calls == 2
