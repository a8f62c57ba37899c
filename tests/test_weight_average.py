"""Weight averaging (`lsr train --weight-average DECAY`): the running average itself, and a training run that
validates and saves the average while the raw weights train exactly as without it."""

from __future__ import annotations

import pytest
import torch

from conftest import synthetic_split
from lsr.d2s.averaging import WeightAverage
from lsr.d2s.model import D2SConfig, D2SModel
from lsr.d2s.train import TrainConfig, train


def test_the_average_follows_the_hand_computed_recursion():
    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = WeightAverage(layer, decay=0.9)
    expected = torch.ones(1, 2)
    for t, value in enumerate([3.0, -1.0, 5.0, 2.0]):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update()
        d = min(0.9, (1 + t) / (10 + t))  # 0.1, 2/11, 3/12, 4/13: the warm-up, below 0.9 here
        expected = d * expected + (1 - d) * value
        assert torch.allclose(average.state["weight"], expected)
    assert torch.equal(layer.weight, torch.full((1, 2), 2.0))  # the model keeps its raw weights


def test_swapped_in_puts_the_raw_weights_back_even_after_an_error():
    layer = torch.nn.Linear(2, 2)
    average = WeightAverage(layer, decay=0.5)
    raw = {k: v.clone() for k, v in layer.state_dict().items()}
    with torch.no_grad():
        average.state["weight"].zero_()
    with pytest.raises(RuntimeError, match="inside"):
        with average.swapped_in():
            assert torch.equal(layer.weight, torch.zeros(2, 2))
            raise RuntimeError("inside")
    assert all(torch.equal(layer.state_dict()[k], v) for k, v in raw.items())


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(torch.nn.Linear(2, 2), decay)


def _run(weight_average: float, tmp_path):
    split = synthetic_split(n_docs=64, per_doc=4, dim=16, seed=5)
    val = synthetic_split(n_docs=32, per_doc=4, dim=16, seed=5)
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=16, hidden_dim=32))
    cfg = TrainConfig(epochs=3, batch_size=64, lr=1e-3, lambda_q=1e-3, lambda_d=1e-3, lr_head=1e-3,
                      select_on="last", weight_average=weight_average, device="cpu")
    result = train(model, split, val, cfg, out_dir=tmp_path / f"m{weight_average}", show_progress=False)
    return model, result


def test_training_validates_and_keeps_the_average_while_the_raw_weights_train_unchanged(tmp_path):
    plain, plain_result = _run(0.0, tmp_path)
    averaged, result = _run(0.9, tmp_path)
    last = result.history[-1]
    # the raw weights followed the same path as without averaging: their dev metrics are those of the plain run
    metrics = lambda val: {k: v for k, v in val.items() if k != "wall_s"}  # noqa: E731
    assert metrics(last["raw"]["val"]) == metrics(plain_result.history[-1]["val"])
    assert "raw" not in plain_result.history[-1]
    # the kept model is the average, not the raw weights, and it is what was validated and saved
    assert not torch.allclose(averaged.vocab_projector.weight, plain.vocab_projector.weight)
    assert metrics(last["val"]) != metrics(last["raw"]["val"])
    saved = D2SModel.from_pretrained(tmp_path / "m0.9")
    assert torch.equal(saved.vocab_projector.weight, averaged.vocab_projector.weight)
