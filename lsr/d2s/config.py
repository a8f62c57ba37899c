"""Training settings: `TrainConfig` (D2S / joint training) and `InferenceFreeConfig` (inference-free query tables).

This module imports no torch: `lsr train --help` builds its flags from these dataclasses (`lsr.cli.train`)
without loading the trainer. Each field carries its own help text in its metadata (`setting`), so the
dataclass is the one source of truth for a training option, its default and its flag.

Field metadata read by the CLI:
- ``help``: the flag's help text;
- ``flag``: the flag's name when it is not ``--`` + the field's name with dashes;
- ``metavar``: the flag's metavar;
- ``no_flag``: why the field has no flag of its own (it is set another way), instead of ``help``.
Choices come from ``Literal`` types; ``X | None`` fields default to None on the command line too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lsr.errors import InvalidInputError


def setting(default: Any, help: str, **cli: Any) -> Any:
    """A dataclass field with its command-line help (and optional ``flag`` / ``metavar``) in its metadata."""
    return field(default=default, metadata={"help": help, **cli})


def library_only(default: Any, why: str) -> Any:
    """A dataclass field with no flag of its own; `why` says how it is set instead (checked by a test)."""
    return field(default=default, metadata={"no_flag": why})


Objective = Literal["joint", "d2s"]
Sparsity = Literal["flops", "l1"]


@dataclass
class TrainConfig:
    # the training length at which the objective defaults below were chosen (the runs are in results/)
    epochs: int = setting(16, "training epochs")
    batch_size: int = setting(512, "caption-image pairs per step")
    temperature: float = setting(0.01, "teacher softmax temperature tau")
    # the sparsity penalty, its weights and weight averaging: None takes the objective's default
    # (OBJECTIVE_DEFAULTS, filled in by `resolved()`)
    sparsity: Sparsity | None = setting(None, "sparsity penalty")
    lambda_q: float | None = setting(None, "sparsity weight on captions")
    lambda_d: float | None = setting(None, "sparsity weight on images (not --lambda-q's value when unset)")
    sparsity_warmup: float = setting(0.2, "fraction of all steps over which lambda grows quadratically")
    lr: float = setting(5e-5, "learning rate of the vocabulary projector and LayerNorm")
    lr_proj: float = setting(1e-3, "learning rate of the input Linear")
    # constant: no warm-up, no decay (the schedule the defaults were chosen with; the runs are in results/)
    lr_schedule: Literal["constant", "linear"] = setting(
        "constant", "constant, or linear (warm-up over --lr-warmup, then decay to 0)")
    lr_warmup: float = setting(0.0, "fraction of all steps for the linear learning-rate warm-up")
    expansion_decay: float = setting(
        0.95, "Bernoulli expansion control: p (batches trained with no-expansion captions) falls from 1 to 0 over "
              "this fraction of the epochs; 0 turns expansion control off")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    seed: int = setting(42, "random seed (initialisation, batches, expansion control)")
    device: str | None = setting(None, "cpu, cuda, cuda:1 ... (default: cuda when available)")
    select_on: Literal["mean_r1", "t2i_r1", "last"] = setting(
        "mean_r1", "validation metric for the best checkpoint (last: the final epoch)")
    # with a FLOPs budget, each epoch is scored on dev as static pruning would serve it (the smallest threshold
    # within the budget); an epoch no threshold brings within the budget is never picked
    select_max_flops: float | None = library_only(
        None, "set from `lsr train --max-flops` (ExperimentConfig.max_flops), which also chooses the static-pruning "
              "threshold after training: one budget for both")
    # "joint": joint sparse + dense training (`lsr.d2s.joint`); "d2s": distil the frozen dense scores
    objective: Objective = setting(
        "joint", "joint: joint sparse + dense training with self-distillation (a trainable dense head "
                 "saved with the model); d2s: distil the frozen dense scores (Nguyen et al.)")
    joint_w_dense: float = setting(1.0, "joint: weight of s_dense in s_inter")
    joint_w_sparse: float = setting(1.0, "joint: weight of s_sparse in s_inter")
    # 2: the two self-distillation terms together weigh twice the cross-modal term (chosen on the dev split)
    joint_self_distill: float = setting(2.0, "joint: weight of the self-distillation terms")
    joint_teacher: float = setting(0.0, "joint: weight of D2S distillation from the frozen teacher")
    joint_tau: float = setting(0.07, "joint: initial dense temperature")
    lr_head: float = setting(1e-4, "joint: learning rate of the dense head and its temperature")
    # 0.995 spans about one epoch of 226 steps (`lsr.d2s.averaging`)
    weight_average: float | None = setting(
        None, "validate, choose and save an exponential moving average of the weights with this decay "
              "(0.995: about one epoch); 0 uses the raw weights", metavar="DECAY")
    group_by_image: bool = setting(
        False, "batches of whole images (all captions of batch-size / captions-per-image images; each image "
               "projected once per batch) instead of random (caption, image) pairs")

    def resolved(self) -> "TrainConfig":
        """A copy with every None setting set to its objective's default (OBJECTIVE_DEFAULTS)."""
        if self.objective not in OBJECTIVE_DEFAULTS:
            raise InvalidInputError(f"Unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVE_DEFAULTS)}.")
        defaults = OBJECTIVE_DEFAULTS[self.objective]
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})


# Settings whose default depends on the objective, each chosen on the dev split under a FLOPs budget. joint: the
# FLOPs regulariser (lambda 6.5e-2, set for the gradient mass of L1 at 1e-2 on trained vectors) with weight
# averaging 0.995. d2s: L1 at 1e-2 without averaging.
OBJECTIVE_DEFAULTS: dict[str, dict] = {
    "joint": {"sparsity": "flops", "lambda_q": 6.5e-2, "lambda_d": 6.5e-2, "weight_average": 0.995},
    "d2s": {"sparsity": "l1", "lambda_q": 1e-2, "lambda_d": 1e-2, "weight_average": 0.0},
}


@dataclass
class InferenceFreeConfig:
    """Inference-free query tables (`lsr.d2s.inference_free`). `lsr train --query-encoder inference-free` fills
    the fields it shares with `TrainConfig` from the same flags; an unset --lambda-q / --lambda-d keeps these."""

    epochs: int = 5
    batch_size: int = 512
    temperature: float = 0.01
    # L1 on the query weights and (when they train) on the documents
    lambda_q: float = 1e-2
    lambda_d: float = 1e-2
    sparsity_warmup: float = 0.2
    lr_table: float = setting(1e-2, "learning rate of the query table")
    lr: float = 5e-5  # vocabulary projector and LayerNorm (train_documents)
    lr_proj: float = 1e-3  # input Linear (train_documents)
    train_documents: bool = library_only(False, "set by `lsr train --freeze-documents` (its negation)")
    seed: int = 42
    device: str | None = None
