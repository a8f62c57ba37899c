"""TrainConfig's objective-dependent defaults: the sparsity penalty, its weights and weight averaging."""

from __future__ import annotations

import dataclasses

import pytest

from lsr.cli.main import build_parser
from lsr.cli.train import train_config
from lsr.d2s.train import OBJECTIVE_DEFAULTS, TrainConfig
from experiments.sweep import parse_grid


def test_each_objective_fills_in_its_own_defaults_and_keeps_explicit_settings():
    joint, d2s = TrainConfig().resolved(), TrainConfig(objective="d2s").resolved()
    assert (joint.sparsity, joint.lambda_q, joint.lambda_d, joint.weight_average) == ("flops", 6.5e-2, 6.5e-2, 0.995)
    assert (d2s.sparsity, d2s.lambda_q, d2s.lambda_d, d2s.weight_average) == ("l1", 1e-2, 1e-2, 0.0)
    mine = TrainConfig(sparsity="l1", lambda_q=3e-3, weight_average=0.0).resolved()
    assert (mine.sparsity, mine.lambda_q, mine.lambda_d, mine.weight_average) == ("l1", 3e-3, 6.5e-2, 0.0)
    assert set(OBJECTIVE_DEFAULTS["joint"]) == set(OBJECTIVE_DEFAULTS["d2s"])


def test_switching_the_objective_before_resolving_brings_that_objectives_defaults():
    """As a sweep grid over `objective` does: each point trains with its own objective's penalty."""
    point = dataclasses.replace(TrainConfig(epochs=2), objective="d2s").resolved()
    assert point.sparsity == "l1" and point.epochs == 2


def test_an_unknown_objective_is_refused_by_name():
    with pytest.raises(ValueError, match="Unknown objective 'both'"):
        TrainConfig(objective="both").resolved()


def test_the_command_line_leaves_unset_flags_to_the_objective():
    args = build_parser().parse_args(["train", "--objective", "d2s", "--lambda-q", "2e-2"])
    cfg = train_config(args).resolved()
    assert (cfg.sparsity, cfg.lambda_q, cfg.lambda_d, cfg.weight_average) == ("l1", 2e-2, 1e-2, 0.0)
    assert train_config(build_parser().parse_args(["train"])).resolved().sparsity == "flops"


def test_grid_values_take_the_resolved_types():
    assert parse_grid(["lambda_q=1e-2,2e-2", "sparsity=l1", "weight_average=0"]) == {
        "lambda_q": [1e-2, 2e-2], "sparsity": ["l1"], "weight_average": [0.0]}
