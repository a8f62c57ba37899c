"""`lsr train`: its flags, and the two trainings it runs (D2S, or inference-free query tables).

The training flags are generated from `TrainConfig`'s fields (`lsr.d2s.config`, which imports no torch): each
field's flag, type, choices, default and help come from the dataclass, and `train_config` reads them back by
name, so a new training setting needs no CLI code. `tests/test_train_config.py` fails when a field has no flag or
a flag of `lsr train` or of the sweep (`python -m experiments.sweep`) is neither a field nor in `OTHER_FLAGS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from lsr.d2s.config import OBJECTIVE_DEFAULTS, InferenceFreeConfig, TrainConfig
from lsr.errors import InvalidInputError

# The flags of `lsr train` and of the sweep (experiments/sweep.py) that are not `TrainConfig` fields, and where
# each one goes (checked both ways by tests/test_train_config.py).
OTHER_FLAGS: dict[str, str] = {
    "--help": "argparse",
    "--verbose": "logging (the sweep's own -v; lsr takes it before the subcommand)",
    "--out": "the output folder (ExperimentConfig.out_dir; the sweep's folder)",
    "--data": "the training pairs (ExperimentConfig.data)",
    "--train-images": "ExperimentConfig.train_images",
    "--dev": "the checkpoint-selection split (ExperimentConfig.dev_set)",
    "--eval": "ExperimentConfig.eval_sets",
    "--init": "the model's projector init (ExperimentConfig.init): a model setting, not a training one",
    "--init-dir": "ExperimentConfig.init_dir",
    "--hidden-dim": "the model's width (ExperimentConfig.hidden_dim)",
    "--no-procrustes": "evaluation baselines (ExperimentConfig.procrustes)",
    "--no-baselines": "evaluation baselines (ExperimentConfig.baselines)",
    "--max-flops": "ExperimentConfig.max_flops (sets TrainConfig.select_max_flops too); the sweep: run_sweep's",
    "--query-encoder": "which training runs: D2S (TrainConfig) or inference-free (InferenceFreeConfig)",
    "--documents": "inference-free: the D2S model whose documents start the training (run_inference_free)",
    "--freeze-documents": "InferenceFreeConfig.train_documents, negated",
    "--lr-table": "InferenceFreeConfig.lr_table (inference-free only)",
    "--lambdas": "the sweep: one point per lambda (run_sweep)",
    "--grid": "the sweep: the grid of TrainConfig fields (run_sweep)",
}


def flag_name(f: dataclasses.Field) -> str:
    """The command-line flag of a config field: its ``flag`` metadata, else ``--`` + its name with dashes."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def field_kind(hint: Any) -> tuple[type, tuple | None, bool]:
    """(base type, Literal choices or None, whether None is allowed) of a config field's type hint."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"Config field type {hint!r}: only X or X | None make a flag.")
        hint = args[0]
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        return type(choices[0]), choices, optional
    if hint not in (int, float, str, bool):
        raise TypeError(f"Config field type {hint!r}: a flag takes int, float, str, bool or a Literal.")
    return hint, None, optional


def _default_help(f: dataclasses.Field, default: Any) -> str:
    if f.name in OBJECTIVE_DEFAULTS["joint"] and default is None:
        per_objective = ", ".join(f"{name} {d[f.name]}" for name, d in OBJECTIVE_DEFAULTS.items())
        free = getattr(InferenceFreeConfig, f.name, None)
        return f" (default: the objective's; {per_objective}" + (f"; inference-free {free:g})" if free else ")")
    if default is None and f.default is not None:  # e.g. `lsr demo --objective`: TrainConfig's own default
        return f" (default: lsr train's, {f.default})"
    return "" if default is None else " (default: %(default)s)"


def add_train_args(p: argparse.ArgumentParser, only: Iterable[str] | None = None,
                   defaults: Mapping[str, Any] | None = None, helps: Mapping[str, str] | None = None) -> None:
    """One flag per `TrainConfig` field (all, or the fields named in `only`), in a "training" group.

    `defaults` and `helps` replace a field's default or help text on this parser (e.g. a shorter demo); a
    default of None leaves the field to the dataclass (`train_config`)."""
    defaults, helps = dict(defaults or {}), dict(helps or {})
    names = None if only is None else set(only)
    hints = typing.get_type_hints(TrainConfig)
    g = p.add_argument_group("training")
    for f in dataclasses.fields(TrainConfig):
        if "no_flag" in f.metadata or (names is not None and f.name not in names):
            continue
        base, choices, _ = field_kind(hints[f.name])
        default = defaults.get(f.name, f.default)
        kwargs: dict[str, Any] = {"dest": f.name, "default": default,
                                  "help": helps.get(f.name, f.metadata["help"])}
        kwargs["help"] += _default_help(f, default)
        if base is bool:  # --x / --no-x
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = base
            if choices:
                kwargs["choices"] = choices
        if "metavar" in f.metadata:
            kwargs["metavar"] = f.metadata["metavar"]
        g.add_argument(flag_name(f), **kwargs)


def config_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """A `cls` dataclass from the namespace's values of its fields (by field name); a field the namespace lacks
    or holds as None keeps the dataclass's default (an unset objective-dependent setting stays None)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if getattr(args, f.name, None) is not None}
    return cls(**{**values, **overrides})


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` that the parsed training flags describe."""
    return config_from_args(TrainConfig, args)


def add_data_args(p: argparse.ArgumentParser, default_eval: tuple[str, ...]) -> None:
    p.add_argument("--data", default="proxy:f30k",
                   help="pairs source: proxy:f30k (caption proxy), d2s:FOLDER (D2S parquet layout), npy:FOLDER")
    p.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
    p.add_argument("--dev", default="proxy:f30k/dev", help="validation split SOURCE/SPLIT for checkpoint selection")
    p.add_argument("--eval", nargs="+", default=list(default_eval), metavar="SOURCE/SPLIT",
                   help="evaluation splits, e.g. proxy:f30k/test proxy:coco/test d2s:DIR/test")


def cmd_train(args) -> int:
    from lsr.app.training import ExperimentConfig, report_text, run_experiment

    cfg = ExperimentConfig(data=args.data, out_dir=args.out, train_images=args.train_images,
                           eval_sets=tuple(args.eval), dev_set=args.dev, init=args.init, init_dir=args.init_dir,
                           hidden_dim=args.hidden_dim,
                           train=train_config(args), procrustes=not args.no_procrustes,
                           baselines=not args.no_baselines, max_flops=args.max_flops or None)
    if args.query_encoder == "inference-free":
        return train_inference_free(args, cfg)
    if args.documents or args.freeze_documents:
        raise InvalidInputError("--documents / --freeze-documents go with --query-encoder inference-free.")
    report = run_experiment(cfg)
    print(report_text(report))
    print(f"\nmodel: {Path(args.out) / 'model'}   report: {Path(args.out) / 'report.json'}")
    return 0


def train_inference_free(args, cfg) -> int:
    from lsr.app.training import run_inference_free

    # the fields it shares with TrainConfig come from the same flags; unset --lambda-q / --lambda-d keep its own
    if_cfg = config_from_args(InferenceFreeConfig, args, train_documents=not args.freeze_documents)
    if args.freeze_documents and not args.documents:
        raise InvalidInputError("--freeze-documents needs --documents MODEL_DIR (the frozen model's documents).")
    report = run_inference_free(cfg, args.documents, if_cfg)
    print(f"inference-free queries, best dev epoch {report['best_epoch']} (documents: {report['documents']}, "
          f"{'trained' if report['documents_trained'] else 'frozen'})")
    for name, row in report["results"].items():
        t2i = row["t2i"]
        print(f"  {name}: text->image R@1/5/10 {t2i['R@1']:.1f} / {t2i['R@5']:.1f} / {t2i['R@10']:.1f}  "
              f"q nnz {row['query_nnz']:.1f}  d nnz {row['doc_nnz']:.1f}  FLOPs {row['flops']:.2f}")
    print(f"\nmodel: {Path(args.out) / 'model'}   report: {Path(args.out) / 'report.json'}")
    return 0
