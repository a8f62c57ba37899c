import json

import numpy as np
import pytest
import torch

from lsr.d2s.model import D2SConfig, D2SModel, pad_token_ids, token_mask


def test_forward_shape_non_negative_and_log1p_relu():
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    x = torch.randn(3, 8)
    out = model(x)
    assert out.shape == (3, 30522)
    assert (out >= 0).all()
    torch.testing.assert_close(out, torch.log1p(torch.relu(model.logits(x))))


def test_no_expansion_mask_keeps_only_own_tokens():
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    with torch.no_grad():
        model.vocab_projector.bias.fill_(5.0)  # every token active before masking
    tokens = [np.array([10, 20, 30]), np.array([7])]
    out = model(torch.randn(2, 8), pad_token_ids(tokens))
    assert set(torch.nonzero(out[0]).flatten().tolist()) == {10, 20, 30}
    assert set(torch.nonzero(out[1]).flatten().tolist()) == {7}
    mask = token_mask(pad_token_ids(tokens), 30522)
    assert mask.sum().item() == 4


def test_tied_init_copies_word_embeddings(tiny_bert_dirs):
    _, encoder_dir, mlm = tiny_bert_dirs
    model = D2SModel.from_word_embeddings(encoder_dir, dense_dim=12)
    torch.testing.assert_close(model.vocab_projector.weight, mlm.bert.embeddings.word_embeddings.weight)
    assert torch.count_nonzero(model.vocab_projector.bias) == 0
    assert model.config.init == "tied" and model.config.hidden_dim == 16


def test_narrower_tied_init_is_the_embeddings_principal_subspace(tiny_bert_dirs):
    _, encoder_dir, mlm = tiny_bert_dirs
    model = D2SModel.from_word_embeddings(encoder_dir, dense_dim=12, hidden_dim=5)
    assert model.vocab_projector.weight.shape == (30522, 5) and model.proj.out_features == 5
    assert model.config.hidden_dim == 5 and model.config.init == "tied"
    emb = mlm.bert.embeddings.word_embeddings.weight.detach().double().numpy()
    _, sing, vt = np.linalg.svd(emb, full_matrices=False)
    weight = model.vocab_projector.weight.detach().double().numpy()
    # E V_k, column by column up to the SVD's sign: orthogonal columns with E's top-5 singular values as norms
    np.testing.assert_allclose(weight.T @ weight, np.diag(sing[:5] ** 2), rtol=1e-4, atol=1e-4)
    reference = emb @ vt[:5].T
    signs = np.sign((weight * reference).sum(axis=0))
    np.testing.assert_allclose(weight * signs, reference, rtol=1e-3, atol=1e-4)
    assert torch.count_nonzero(model.vocab_projector.bias) == 0


def test_hidden_dim_outside_the_embedding_width_or_on_an_mlm_head_is_refused(tiny_bert_dirs):
    from lsr.app.training import build_model

    mlm_dir, encoder_dir, _ = tiny_bert_dirs
    with pytest.raises(ValueError, match="hidden_dim must be in 1..16"):
        D2SModel.from_word_embeddings(encoder_dir, dense_dim=12, hidden_dim=32)
    with pytest.raises(ValueError, match="needs init 'tied'"):
        build_model("mlm", 12, str(mlm_dir), hidden_dim=8)
    assert build_model("mlm", 12, str(mlm_dir), hidden_dim=16).config.hidden_dim == 16
    assert build_model("random", 12, hidden_dim=8).vocab_projector.weight.shape == (30522, 8)
    assert build_model("tied", 12, str(encoder_dir), hidden_dim=8).config.hidden_dim == 8


def test_mlm_init_copies_decoder_bias_and_head_layer_norm(tiny_bert_dirs):
    mlm_dir, _, mlm = tiny_bert_dirs
    model = D2SModel.from_mlm_head(mlm_dir, dense_dim=12)
    torch.testing.assert_close(model.vocab_projector.weight, mlm.cls.predictions.decoder.weight)
    torch.testing.assert_close(model.vocab_projector.bias, mlm.cls.predictions.bias)
    torch.testing.assert_close(model.layer_norm.weight, mlm.cls.predictions.transform.LayerNorm.weight)
    assert model.config.init == "mlm"


def test_save_and_load_round_trip_uses_safetensors_only(tmp_path):
    torch.manual_seed(1)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((tmp_path / "config.json").read_text())["dense_dim"] == 8
    loaded = D2SModel.from_pretrained(tmp_path)
    x = torch.randn(4, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="not a saved D2S model"):
        D2SModel.from_pretrained(tmp_path)


def test_encode_returns_sparse_batch_and_rejects_bad_vectors():
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    batch = model.encode(x, batch_size=2)
    np.testing.assert_allclose(batch.csr.toarray(), model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    noexp = model.encode(x, [np.array([1, 2])] * 5)
    assert set(noexp.csr.indices.tolist()) <= {1, 2}
    with pytest.raises(ValueError, match="NaN or inf"):
        model.encode(np.full((1, 8), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        model.encode(np.zeros((1, 7), dtype=np.float32))


def test_min_weight_prunes_at_encode_and_is_saved(tmp_path):
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    x = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    full = model.encode(x)
    threshold = float(np.median(full.csr.data))
    pruned = model.encode(x, min_weight=threshold)
    assert 0 < pruned.csr.nnz < full.csr.nnz and pruned.csr.data.min() > threshold
    kept = full.csr.toarray()
    kept[kept <= threshold] = 0
    np.testing.assert_array_equal(pruned.csr.toarray(), kept)  # the surviving weights are unchanged
    model.config.min_weight = threshold
    model.save_pretrained(tmp_path)
    assert D2SModel.from_pretrained(tmp_path).encode(x).csr.nnz == pruned.csr.nnz
    with pytest.raises(ValueError, match="min_weight"):
        model.encode(x, min_weight=-1)
