"""TrainConfig's objective-dependent defaults (the sparsity penalty, its weights and weight averaging), and the
training flags generated from its fields: every field has a flag and every flag a field (or a declared reason)."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import typing

import pytest

from lsr.cli.main import build_parser
from lsr.cli.train import OTHER_FLAGS, add_train_args, field_kind, flag_name, train_config
from lsr.d2s.config import InferenceFreeConfig
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


# --- the training flags come from TrainConfig's fields (lsr.d2s.config): one source of truth -------------------

def _subparser(name: str) -> argparse.ArgumentParser:
    """`lsr train`'s parser, or the sweep's (`python -m experiments.sweep`, which takes the same training flags)."""
    if name == "sweep":
        from experiments.sweep import build_parser as sweep_parser

        return sweep_parser()
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _long_flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Each long option -> its action (a --x / --no-x pair counts once, as --x)."""
    return {s: a for a in parser._actions for s in a.option_strings
            if s.startswith("--") and not (s.startswith("--no-") and "--" + s[5:] in a.option_strings)}


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_every_train_config_field_has_a_flag_and_every_flag_a_field_or_a_reason(command):
    flags = _long_flags(_subparser(command))
    for f in dataclasses.fields(TrainConfig):
        if "no_flag" in f.metadata:  # a declared, reasoned exception: set another way
            assert f.metadata["no_flag"].strip() and flag_name(f) not in flags, f.name
            continue
        assert flag_name(f) in flags, f"TrainConfig.{f.name} has no flag in {command}"
        assert flags[flag_name(f)].dest == f.name and f.metadata["help"].strip(), f.name
    field_flags = {flag_name(f) for f in dataclasses.fields(TrainConfig)}
    strays = sorted(set(flags) - field_flags - set(OTHER_FLAGS))
    assert not strays, f"{command} flags that are neither TrainConfig fields nor in OTHER_FLAGS: {strays}"


def test_the_declared_cli_only_flags_exist_and_say_where_they_go():
    flags = set(_long_flags(_subparser("train"))) | set(_long_flags(_subparser("sweep")))
    assert set(OTHER_FLAGS) <= flags, sorted(set(OTHER_FLAGS) - flags)
    assert all(why.strip() for why in OTHER_FLAGS.values())
    assert not set(OTHER_FLAGS) & {flag_name(f) for f in dataclasses.fields(TrainConfig)}


def test_every_inference_free_setting_is_reachable_from_lsr_train():
    """`lsr train --query-encoder inference-free` builds its InferenceFreeConfig from the same namespace, by name."""
    dests = {a.dest for a in _subparser("train")._actions}
    for f in dataclasses.fields(InferenceFreeConfig):
        assert f.name in dests or f.metadata.get("no_flag", "").strip(), f"InferenceFreeConfig.{f.name} has no flag"


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_default_flags_give_the_default_config_exactly(command):
    assert train_config(_subparser(command).parse_args([])) == TrainConfig()


def _other_value(f: dataclasses.Field, hint) -> object:
    """A value for the field that is not its default, of the field's own type."""
    base, choices, _ = field_kind(hint)
    if choices:
        return next(c for c in choices if c != f.default)
    if base is bool:
        return not f.default
    if base is str:
        return "cuda:1"
    if base is int:
        return f.default + 3
    return 0.25 if f.default is None else f.default * 2 + 0.5


def test_a_non_default_flag_of_each_type_round_trips():
    hints = typing.get_type_hints(TrainConfig)
    argv, expected, kinds = [], {}, set()
    for f in dataclasses.fields(TrainConfig):
        if "no_flag" in f.metadata:
            continue
        value = _other_value(f, hints[f.name])
        assert value != f.default
        expected[f.name] = value
        base, choices, optional = field_kind(hints[f.name])
        kinds.add((base.__name__, bool(choices), optional))
        if isinstance(value, bool):
            argv.append(flag_name(f) if value else "--no-" + flag_name(f)[2:])
        else:
            argv += [flag_name(f), str(value)]
    assert {("int", False, False), ("float", False, False), ("float", False, True), ("str", True, False),
            ("str", True, True), ("str", False, True), ("bool", False, False)} <= kinds
    cfg = train_config(_subparser("train").parse_args(argv))
    assert cfg == TrainConfig(**expected)
    assert cfg.resolved() == cfg  # every objective-dependent setting was given


def test_a_flag_outside_the_choices_is_refused(capsys):
    with pytest.raises(SystemExit):
        _subparser("train").parse_args(["--select-on", "r5"])
    assert "invalid choice: 'r5'" in capsys.readouterr().err


def test_only_the_named_fields_with_their_own_defaults():
    """As a shorter run (`lsr demo`) would declare a few training flags with other defaults."""
    p = argparse.ArgumentParser()
    add_train_args(p, only=("epochs", "objective"), defaults={"epochs": 4, "objective": None})
    assert set(_long_flags(p)) == {"--help", "--epochs", "--objective"}
    assert train_config(p.parse_args([])) == TrainConfig(epochs=4)
    assert train_config(p.parse_args(["--objective", "d2s"])) == TrainConfig(epochs=4, objective="d2s")


def test_the_settings_and_the_cli_flags_load_without_torch():
    """`lsr train --help` builds its flags from lsr.d2s.config, which imports no torch; lsr.d2s.train re-exports."""
    import lsr.d2s.config
    import lsr.d2s.inference_free
    import lsr.d2s.train

    assert lsr.d2s.train.TrainConfig is lsr.d2s.config.TrainConfig
    assert lsr.d2s.inference_free.InferenceFreeConfig is lsr.d2s.config.InferenceFreeConfig
    code = "import sys, lsr.cli.train, lsr.d2s.config; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_lsr_demo_takes_its_training_flags_from_the_config():
    from lsr.cli.main import build_parser
    from lsr.cli.train import train_config
    from lsr.d2s.config import TrainConfig

    assert train_config(build_parser().parse_args(["demo"])) == TrainConfig(epochs=4, batch_size=128)
    args = build_parser().parse_args(["demo", "--objective", "d2s", "--epochs", "2"])
    assert train_config(args) == TrainConfig(epochs=2, batch_size=128, objective="d2s")
