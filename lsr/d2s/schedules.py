"""Schedules: expansion probability p, sparsity-weight warm-up, learning rate."""

from __future__ import annotations

from lsr.errors import InvalidInputError


def expansion_control_p(epoch: int, epochs: int, decay_fraction: float = 0.95) -> float:
    """Probability that a batch's captions are encoded without expansion during `epoch` (0-based).

    p starts at 1 and decreases linearly to 0 over `decay_fraction` of the epochs, stepped per epoch:
    lexical grounding first, expansion last.
    """
    if epochs <= 0:
        raise InvalidInputError("epochs must be positive.")
    if not 0.0 <= decay_fraction <= 1.0:
        raise InvalidInputError(f"expansion decay {decay_fraction} is outside [0, 1]; 0 turns expansion control off.")
    span = decay_fraction * epochs
    return max(0.0, 1.0 - epoch / span) if span > 0 else 0.0


def sparsity_weight(step: int, lam: float, warmup_steps: int) -> float:
    """lambda * (t / T)^2 during the first T steps, then lambda (t counts from 1)."""
    if warmup_steps <= 0:
        return lam
    t = min(step + 1, warmup_steps)
    return lam * (t / warmup_steps) ** 2


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str = "linear") -> float:
    """Multiplier of the base learning rate: linear warm-up, then linear decay to 0 (or constant)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule != "linear":
        raise InvalidInputError(f"Unknown learning-rate schedule {schedule!r}; use 'linear' or 'constant'.")
    remaining = max(1, total_steps - warmup_steps)
    return max(0.0, (total_steps - step) / remaining)
