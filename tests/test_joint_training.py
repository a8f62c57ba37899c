"""Joint sparse + dense training (`lsr train --objective joint`): the loss, its gradients, and a small run
whose dense head is saved with the model and evaluated beside the frozen teacher."""

from __future__ import annotations

import pytest
import torch

from conftest import synthetic_split
from lsr.d2s.joint import JointObjective, info_nce, self_distillation
from lsr.d2s.model import D2SConfig, D2SModel
from lsr.d2s.train import TrainConfig, train
from lsr.eval.evaluate import evaluate_dense, evaluate_dense_head, evaluate_sparse


def test_info_nce_counts_every_caption_of_the_same_image_as_positive():
    doc = torch.tensor([0, 0, 1])
    positives = doc[:, None] == doc[None, :]
    perfect = torch.where(positives, 20.0, -20.0)
    confused = torch.where(positives, -20.0, 20.0)
    assert info_nce(perfect, positives) < 0.7  # two equal positives: log 2 at best
    assert info_nce(perfect, positives) == pytest.approx(torch.log(torch.tensor(2.0)).item() * 2 / 3, abs=1e-4)
    assert info_nce(confused, positives) > 10
    teacher = torch.randn(4, 4)
    assert self_distillation(teacher, teacher) < self_distillation(-teacher, teacher)


def test_the_joint_loss_reaches_the_dense_head_the_sparse_head_and_the_temperature():
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16, vocab_size=64, dense_head=True))
    objective = JointObjective(teacher=0.5)
    images, captions = torch.randn(6, 8), torch.randn(6, 8)
    sparse = model(images) @ model(captions).t()
    loss, parts = objective(model, images, captions, sparse, torch.eye(6, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"nce", "self_distill", "tau", "teacher"}
    assert parts["tau"] == pytest.approx(0.07)
    for grad in (model.dense_head.weight.grad, model.vocab_projector.weight.grad, objective.log_tau.grad):
        assert grad is not None and grad.abs().sum() > 0


def test_a_fresh_dense_head_is_the_identity():
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16, vocab_size=64))
    x = torch.randn(3, 8)
    before = model(x)
    model.add_dense_head()
    assert torch.equal(model.dense(x), x) and torch.allclose(model(x), before)


def test_joint_training_keeps_its_dense_head_and_reports_it(tmp_path):
    split = synthetic_split(n_docs=96, per_doc=4, dim=16, seed=3)
    val = synthetic_split(n_docs=48, per_doc=4, dim=16, seed=3)
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=16, hidden_dim=32))
    before = evaluate_sparse(model, val)
    result = train(model, split, val, TrainConfig(epochs=6, batch_size=64, lr=1e-3, lambda_q=1e-3, lambda_d=1e-3,
                                                  objective="joint", lr_head=1e-3),
                   out_dir=tmp_path / "m", show_progress=False)
    after = evaluate_sparse(model, val)
    assert after["t2i"]["R@1"] > before["t2i"]["R@1"] + 3
    assert all("val_dense_head" in h and h["tau"] > 0 for h in result.history)
    reloaded = D2SModel.from_pretrained(tmp_path / "m")
    assert reloaded.config.dense_head and reloaded.dense_head is not None
    assert evaluate_sparse(reloaded, val)["t2i"]["R@1"] == pytest.approx(after["t2i"]["R@1"])
    assert not torch.allclose(reloaded.dense_head.weight, torch.eye(16))  # the head was trained and saved
    head = evaluate_dense_head(reloaded, val)
    assert head["t2i"]["R@1"] > 0.5 * evaluate_dense(val)["t2i"]["R@1"]  # still a working dense retriever


def test_an_unknown_objective_is_refused():
    split = synthetic_split(n_docs=8, per_doc=2, dim=8)
    with pytest.raises(ValueError, match="Unknown objective"):
        train(D2SModel(D2SConfig(dense_dim=8, hidden_dim=16)), split, None, TrainConfig(objective="both"),
              show_progress=False)
