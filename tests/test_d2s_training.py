import numpy as np
import pytest
import torch

from conftest import synthetic_split
from lsr.d2s import train as train_module
from lsr.d2s.losses import distillation_loss, flops_penalty, l1_penalty, soft_cross_entropy
from lsr.d2s.model import D2SConfig, D2SModel, pad_token_ids
from lsr.d2s.schedules import expansion_control_p, lr_factor, sparsity_weight
from lsr.d2s.static_pruning import choose_min_weight, threshold_curve
from lsr.d2s.train import TrainConfig, caption_scores_no_expansion, train
from lsr.eval.evaluate import evaluate_sparse


def test_expansion_probability_decays_linearly_to_zero_over_95_percent():
    ps = [expansion_control_p(e, 20) for e in range(20)]
    assert ps[0] == 1.0
    assert ps[1] == pytest.approx(1 - 1 / 19)
    assert ps[19] == 0.0 and all(a >= b for a, b in zip(ps, ps[1:]))


def test_expansion_control_off_and_its_flag():
    import argparse

    from lsr.cli.train import add_train_args, train_config

    assert [expansion_control_p(e, 10, 0.0) for e in range(10)] == [0.0] * 10
    with pytest.raises(ValueError, match="expansion decay"):
        expansion_control_p(0, 10, -0.5)
    parser = argparse.ArgumentParser()
    add_train_args(parser)
    assert train_config(parser.parse_args(["--expansion-decay", "0"])).expansion_decay == 0.0
    assert train_config(parser.parse_args([])).expansion_decay == 0.95
    assert train_config(parser.parse_args([])).objective == "joint"  # the default (README, "Beyond the teacher")


def test_sparsity_weight_quadratic_warmup_then_constant():
    assert sparsity_weight(0, 0.1, 10) == pytest.approx(0.1 * (1 / 10) ** 2)
    assert sparsity_weight(4, 0.1, 10) == pytest.approx(0.1 * 0.25)
    assert sparsity_weight(9, 0.1, 10) == pytest.approx(0.1)
    assert sparsity_weight(500, 0.1, 10) == pytest.approx(0.1)


def test_lr_factor_warmup_and_linear_decay():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert lr_factor(55, 100, 10, "constant") == 1.0


def test_losses_match_definitions():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    expected = -(targets * torch.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(soft_cross_entropy(logits, targets), expected)
    # a student equal to the teacher scaled by 1/tau minimises the distillation loss
    teacher = torch.randn(4, 4)
    good = distillation_loss(teacher / 0.1, teacher, 0.1)
    bad = distillation_loss(-teacher / 0.1, teacher, 0.1)
    assert good < bad
    w = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 4.0]])
    assert l1_penalty(w).item() == pytest.approx(3.5)
    assert flops_penalty(w).item() == pytest.approx(0.5 ** 2 + 3.0 ** 2)


def test_compact_no_expansion_scores_equal_masked_full_vectors():
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    with torch.no_grad():
        model.vocab_projector.bias.uniform_(0, 1)
    captions, images = torch.randn(5, 8), torch.randn(6, 8)
    tokens = pad_token_ids([np.array([3, 4, 5]), np.array([9]), np.array([1, 2]), np.array([7, 8]),
                            np.array([100])])
    scores, weights = caption_scores_no_expansion(model, captions, tokens, model.active(images))
    full = model(captions, tokens)
    torch.testing.assert_close(scores, model(images) @ full.t())
    torch.testing.assert_close(weights.sum(1), full.sum(1))


def test_caption_vectors_come_from_caption_embeddings(monkeypatch):
    """The public reference code encodes captions from the IMAGE embedding when the draw is 0; we must not."""
    split = synthetic_split(n_docs=16, per_doc=4, dim=8)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    seen = []
    original = D2SModel.active

    def spy(self, dense):
        seen.append(dense.detach().clone())
        return original(self, dense)

    monkeypatch.setattr(D2SModel, "active", spy)
    cfg = TrainConfig(epochs=1, batch_size=8, expansion_decay=1e-9, objective="d2s")  # p = 0 for epoch... see below
    # epochs=1 and a tiny decay span give p = 1 at epoch 0; force p = 0 instead:
    monkeypatch.setattr(train_module, "expansion_control_p", lambda *a, **k: 0.0)
    train(model, split, None, cfg, show_progress=False)
    captions = torch.from_numpy(split.query_emb)
    images = torch.from_numpy(split.doc_emb)
    caption_calls = [x for x in seen if any(torch.equal(x[0], c) for c in captions)]
    assert caption_calls, "captions were never encoded from caption embeddings"
    for x in seen:  # every call is either all captions or all images, never images standing in for captions
        is_caption = any(torch.equal(x[0], c) for c in captions)
        is_image = any(torch.equal(x[0], i) for i in images)
        assert is_caption != is_image
    assert len(caption_calls) * 2 == len(seen)  # one caption call per image call


def test_training_improves_over_untrained_and_keeps_best_checkpoint(tmp_path):
    split = synthetic_split(n_docs=96, per_doc=4, dim=16, seed=3)
    val = synthetic_split(n_docs=48, per_doc=4, dim=16, seed=3)  # same documents' first half, seeded alike
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=16, hidden_dim=32))
    before = evaluate_sparse(model, val)
    result = train(model, split, val, TrainConfig(epochs=6, batch_size=64, lr=1e-3, lambda_q=1e-3, lambda_d=1e-3,
                                                  temperature=0.05, objective="d2s"), out_dir=tmp_path / "m", show_progress=False)
    after = evaluate_sparse(model, val)
    # a random projection already keeps much of the dense ranking; training must beat it and sparsify
    assert after["t2i"]["R@1"] > before["t2i"]["R@1"] + 3
    assert after["query_nnz"] < 0.98 * before["query_nnz"]
    assert len(result.history) == 6 and all("val" in h for h in result.history)
    best = max(result.history, key=lambda h: (h["val"]["t2i"]["R@1"] + h["val"]["i2t"]["R@1"]) / 2)
    assert result.best_epoch == max(h["epoch"] for h in result.history
                                    if (h["val"]["t2i"]["R@1"] + h["val"]["i2t"]["R@1"]) / 2 ==
                                    (best["val"]["t2i"]["R@1"] + best["val"]["i2t"]["R@1"]) / 2)
    reloaded = D2SModel.from_pretrained(tmp_path / "m")
    assert evaluate_sparse(reloaded, val)["t2i"]["R@1"] == pytest.approx(after["t2i"]["R@1"])
    assert (tmp_path / "m" / "training.json").is_file()


def test_masked_batches_follow_the_schedule():
    split = synthetic_split(n_docs=32, per_doc=4, dim=8)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    result = train(model, split, None, TrainConfig(epochs=20, batch_size=32, objective="d2s"), show_progress=False)
    masked = [h["masked_batches"] for h in result.history]
    assert [h["p"] for h in result.history] == [expansion_control_p(e, 20) for e in range(20)]
    assert masked[0] == 4  # p = 1: every batch without expansion
    assert masked[-1] == 0  # p = 0 in the last epoch (95% decay over 20 epochs)
    assert sum(masked[:10]) > sum(masked[10:])
    assert result.history[0]["q_nnz"] <= 8  # no-expansion captions carry at most their own 8 tokens


@pytest.mark.parametrize("bias_shift", [0.0, -1.5])  # about half the logits active, and ~1%
def test_active_columns_equal_the_dense_path_in_values_and_gradients(bias_shift):
    from lsr.d2s.sparse_backward import _ActiveLogRelu, active_projection, active_scores, column_means

    torch.manual_seed(0)
    hidden = torch.randn(8, 6, dtype=torch.float64, requires_grad=True)
    projector = torch.nn.Linear(6, 300).double()
    with torch.no_grad():
        projector.bias += bias_shift
    reference = torch.log1p(torch.relu(projector(hidden)))
    active = float((reference > 0).double().mean())
    assert (active > 0.3) if bias_shift == 0 else (0 < active < 0.05)
    assert torch.autograd.gradcheck(lambda h, w, b: _ActiveLogRelu.apply(h, w, b)[0],
                                    (hidden, projector.weight, projector.bias))
    out = active_projection(hidden, projector)
    assert torch.equal(out.to_dense(), reference) and len(out.cols) < 300 * (0.9 if bias_shift else 1.01)
    other_hidden = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    other = active_projection(other_hidden, projector)
    ids = torch.tensor([[3, 7, 299], [0, 0, 150], [5, 6, 7], [1, 2, 3], [9, 9, 9]])
    loss = (active_scores(out, other) ** 2).sum() + out.values.sum() + (out.at(ids) ** 2).sum() \
        + (column_means(out.cols.expand_as(out.values), out.values, 8, 300) ** 2).sum()
    other_dense = torch.log1p(torch.relu(projector(other_hidden)))
    expected_loss = ((reference @ other_dense.t()) ** 2).sum() + reference.sum() + (reference[:, ids] ** 2).sum() \
        + (reference.mean(dim=0) ** 2).sum()
    params = (hidden, other_hidden, projector.weight, projector.bias)
    grads = torch.autograd.grad(loss, params)
    expected = torch.autograd.grad(expected_loss, params)
    assert torch.allclose(loss, expected_loss)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want)


def test_grouped_batches_hold_whole_images_and_cover_every_caption_once():
    from lsr.d2s.train import epoch_batches

    query_doc = np.repeat(np.arange(50), 4)  # 50 images x 4 captions, as the caption proxy's train split
    rng = np.random.default_rng(0)
    grouped = epoch_batches(query_doc, 16, rng, group_by_image=True)
    assert len(grouped) == 12 and all(len(b) == 16 for b in grouped)  # 200 // 16, the tail dropped
    rows = np.concatenate(grouped)
    assert len(set(rows.tolist())) == len(rows)
    for batch in grouped:  # 16 captions of exactly 4 whole images
        images, counts = np.unique(query_doc[batch], return_counts=True)
        assert len(images) == 4 and (counts == 4).all()
    first = [query_doc[b[0]] for b in grouped]
    assert first != sorted(first)  # images in random order
    plain = epoch_batches(query_doc, 16, np.random.default_rng(0))
    assert np.array_equal(np.concatenate(plain), np.random.default_rng(0).permutation(200)[:192])


@pytest.mark.parametrize("objective", ["d2s", "joint"])
def test_training_on_grouped_batches_learns(objective):
    split = synthetic_split(n_docs=96, per_doc=4, dim=16, seed=3)  # the setting of the ungrouped tests
    val = synthetic_split(n_docs=48, per_doc=4, dim=16, seed=3)
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=16, hidden_dim=32))
    before = evaluate_sparse(model, val)
    cfg = TrainConfig(epochs=6, batch_size=64, lr=1e-3, lambda_q=1e-3, lambda_d=1e-3, objective=objective,
                      lr_head=1e-3, temperature=0.05 if objective == "d2s" else 0.01, group_by_image=True)
    result = train(model, split, val, cfg, show_progress=False)
    after = evaluate_sparse(model, val)
    assert after["t2i"]["R@1"] > before["t2i"]["R@1"] + 3
    assert result.history[-1]["d_nnz"] < result.history[0]["d_nnz"]


def test_with_a_flops_budget_the_best_epoch_is_chosen_as_pruning_would_serve_it():
    split = synthetic_split(n_docs=96, per_doc=4, dim=16, seed=3)
    val = synthetic_split(n_docs=48, per_doc=4, dim=16, seed=3)
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=16, hidden_dim=32))
    budget = 0.5 * evaluate_sparse(model, val)["flops"]  # the untrained model needs pruning to fit
    cfg = TrainConfig(epochs=4, batch_size=64, lr=1e-3, lambda_q=1e-3, lambda_d=1e-3, temperature=0.05,
                      objective="d2s", select_max_flops=budget)
    result = train(model, split, val, cfg, show_progress=False)
    scores = []
    for h in result.history:
        b = h["val_at_budget"]
        assert b["reached"] and b["flops"] <= budget and b["min_weight"] > 0
        scores.append((b["t2i"]["R@1"] + b["i2t"]["R@1"]) / 2)
    assert result.best_epoch == max(i + 1 for i, s in enumerate(scores) if s == max(scores))
    # the chosen epoch's curve is kept for choosing the threshold afterwards: it is the loaded model's own
    assert result.best_curve == threshold_curve(model, val)
    best = result.history[result.best_epoch - 1]["val_at_budget"]
    assert choose_min_weight(model, val, budget, curve=result.best_curve)[0] == best["min_weight"]


def test_an_unreachable_flops_budget_never_picks_an_epoch(monkeypatch):
    split = synthetic_split(n_docs=32, per_doc=4, dim=8)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    monkeypatch.setattr(train_module, "smallest_within", lambda curve, max_flops: None)
    result = train(model, split, split, TrainConfig(epochs=2, batch_size=32, objective="d2s", select_max_flops=1.0),
                   show_progress=False)
    assert result.best_epoch == -1
    assert all(not h["val_at_budget"]["reached"] for h in result.history)
