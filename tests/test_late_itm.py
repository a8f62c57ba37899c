"""The fine stages of two-stage retrieval: token-level late interaction (TGDT) and BLIP's ITM head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lsr import EmbeddedIndex, SparseVector
from lsr.backends.base import Hit
from lsr.search.modes import Rerank
from lsr.search.rerank import late_rerank
from lsr.search.tokens import TokenStore, late_scores
from tests.conftest import needs_minilm


def unit_rows(rng, n: int, d: int = 8) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_late_scores_equal_a_brute_force_double_loop():
    rng = np.random.default_rng(0)
    q = unit_rows(rng, 5)
    docs = [unit_rows(rng, n) for n in (1, 3, 7, 2)]
    glob = rng.uniform(-1, 1, size=4).astype(np.float32)
    expected = [sum(max(float(qt @ dt) for dt in d) for qt in q) + g for d, g in zip(docs, glob)]
    assert late_scores(q, docs, glob) == pytest.approx(expected, rel=1e-5)
    assert late_scores(q, [], np.zeros(0)).size == 0


def test_late_rerank_fixes_a_known_stage_one_order(tmp_path):
    e = np.eye(4, dtype=np.float32)
    store = TokenStore.build(["a", "b"], [e[[2, 3]], e[[0, 1]]])  # b holds exactly the query's two tokens
    store.save(tmp_path / "tok")
    store = TokenStore.load(tmp_path / "tok")
    hits = [Hit("a", 9.0), Hit("b", 4.0)]  # stage 1 puts a first
    doc_dense = np.array([[1, 0, 0, 0], [0.8, 0.6, 0, 0]], dtype=np.float32)
    out = late_rerank(hits, e[[0, 1]], store, doc_dense, np.array([1, 0, 0, 0], dtype=np.float32))
    assert [h.id for h in out] == ["b", "a"]
    assert out[0].score == pytest.approx(2.0 + 0.8) and out[1].score == pytest.approx(0.0 + 1.0)
    assert out[0].stages == {"sparse": 4.0, "late": pytest.approx(2.8)}


def test_token_store_round_trip_order_errors_and_bytes(tmp_path):
    rng = np.random.default_rng(1)
    arrays = [unit_rows(rng, n, 16) for n in (3, 1, 5)]
    store = TokenStore.build(["x", "y", "z"], arrays)
    assert store.nbytes == (9 * 16) * 2 + 4 * 8  # float16 vectors + int64 offsets
    store.save(tmp_path / "s")
    again = TokenStore.load(tmp_path / "s")
    got = again.get(["z", "x"])
    np.testing.assert_allclose(got[0], arrays[2], atol=1e-3)  # float16
    np.testing.assert_allclose(got[1], arrays[0], atol=1e-3)
    assert len(again) == 3 and "y" in again and "w" not in again
    with pytest.raises(KeyError, match="'w'"):
        again.get(["w"])
    with pytest.raises(ValueError, match="no token vectors"):
        TokenStore.build(["a"], [np.zeros((0, 16))])
    with pytest.raises(FileNotFoundError, match="lsr index --tokens"):
        TokenStore.load(tmp_path / "missing")


@needs_minilm
def test_minilm_token_vectors_drop_special_tokens():
    from lsr.encoders.minilm import MiniLMEncoder

    enc = MiniLMEncoder(device="cpu")
    texts = ["a dog catching a frisbee", "two men"]
    tokens = enc.encode_tokens(texts, batch_size=1)
    assert [len(t) for t in tokens] == [len(enc.tokenizer.tokenize(t)) for t in texts]  # no [CLS]/[SEP]/padding
    np.testing.assert_allclose(np.linalg.norm(tokens[0], axis=1), 1.0, rtol=1e-5)
    batched = enc.encode_tokens(texts, batch_size=2)  # padding to a longer text changes nothing
    np.testing.assert_allclose(batched[1], tokens[1], atol=1e-4)


@needs_minilm
def test_searcher_late_rerank_over_a_real_minilm_encoder(vocab, tmp_path):
    from lsr import D2SConfig, D2SEncoder, D2SModel, SparseSearcher
    from lsr.encoders.minilm import MiniLMEncoder

    torch.manual_seed(0)
    dense = MiniLMEncoder(device="cpu")
    encoder = D2SEncoder(D2SModel(D2SConfig(dense_dim=384, hidden_dim=16)), dense, vocab=vocab)
    captions = ["a dog runs on the grass", "a red car on a street", "two men play guitars on a stage"]
    ids = ["d", "c", "g"]
    index = EmbeddedIndex(vocab_size=len(vocab))
    index.index(ids, encoder.encode_document(captions), dense=dense.encode_texts(captions))
    searcher = SparseSearcher(index, encoder, tokens=TokenStore.build(ids, dense.encode_tokens(captions)))
    query = "two men play guitars"
    hits = searcher.search(query, k=3, mode=Rerank("late", candidates=3))
    stage1 = index.search(encoder.encode_query([query])[0], k=3)
    expected = late_scores(dense.encode_tokens([query])[0], dense.encode_tokens([captions[ids.index(h.id)]
                                                                                  for h in stage1]),
                           dense.encode_texts([captions[ids.index(h.id)] for h in stage1]) @ dense.encode_texts([query])[0])
    order = [stage1[i].id for i in np.argsort(-expected, kind="stable")]
    assert [h.id for h in hits] == order and hits[0].id == "g"
    assert [h.score for h in hits] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=2e-3)  # float16 store


pil = pytest.importorskip("PIL")
from tests.test_blip_encoder import tiny_blip_dir  # noqa: E402,F401  (the tiny random BLIP fixture)


def _images():
    from PIL import Image

    return [Image.new("RGB", (80, 60), c) for c in ("red", "green", "blue")]


@needs_minilm
def test_itm_scores_equal_the_models_own_head(tiny_blip_dir):
    from lsr.search.itm import ITMScorer

    scorer = ITMScorer.from_pretrained(tiny_blip_dir, device="cpu", batch_size=2)
    scores = scorer.score("a red square", _images())
    assert scores.shape == (3,) and scores.dtype == np.float32 and np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_array_equal(scores, scorer.score("a red square", _images()))  # deterministic
    blip = scorer.blip
    pixels = blip.processor(images=_images(), return_tensors="pt")["pixel_values"]
    enc = blip.tokenizer(["a red square"] * 3, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = blip.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pixels,
                            use_itm_head=True).itm_score
    np.testing.assert_allclose(scores, torch.softmax(logits, -1)[:, 1].numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        scorer.score("  ", _images())


@needs_minilm
def test_searcher_itm_rerank_orders_hits_by_match_probability(tiny_blip_dir, vocab, tmp_path):
    from lsr import SparseSearcher
    from lsr.encoders.sparse import LabelTokenEncoder
    from lsr.search.itm import ITMScorer

    paths = []
    for i, image in enumerate(_images()):
        paths.append(tmp_path / f"{i}.png")
        image.save(paths[-1])
    scorer = ITMScorer.from_pretrained(tiny_blip_dir, device="cpu")

    class Words:  # a label-token stand-in: every image carries the token "square"
        name = "words"

        def __init__(self, vocab):
            self.vocab = vocab

        def encode_query(self, text):
            return SparseVector.from_dict({self.vocab.id("square"): 1.0})

    index = EmbeddedIndex(vocab_size=len(vocab))
    sq = vocab.id("square")
    index.index([p.name for p in paths], [SparseVector.from_dict({sq: 1.0 + i}) for i in range(3)],
                [{"path": str(p)} for p in paths])
    searcher = SparseSearcher(index, LabelTokenEncoder(Words(vocab)), itm=scorer)
    hits = searcher.search("a square", k=3, mode=Rerank("itm", candidates=3))
    expected = scorer.score("a square", paths)
    assert [h.id for h in hits] == [paths[i].name for i in np.argsort(-expected, kind="stable")]
    assert [h.score for h in hits] == pytest.approx(sorted(expected.tolist(), reverse=True))
    index.index(["nopath"], [SparseVector.from_dict({sq: 9.0})])
    with pytest.raises(ValueError, match="no 'path'"):
        searcher.search("a square", k=1, mode=Rerank("itm", candidates=4))
