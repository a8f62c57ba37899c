"""Exponential moving average of a model's weights (Polyak averaging), for validation and the saved model.

Training goes on with the raw weights; after each optimiser step the average moves towards them:

    average <- average + (1 - d_t) * (weights - average),   d_t = min(decay, (1 + t) / (10 + t))

(the warm-up of d_t keeps the first steps from being dominated by the untrained start). With a constant
learning rate, dev R@1 of the raw weights jumps by about a point from epoch to epoch; the average smooths
that step noise out. `swapped_in` evaluates or saves the average and puts the raw weights back afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from lsr.errors import InvalidInputError


class WeightAverage:
    """The running average of every floating-point tensor of `model`'s state (parameters and buffers)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise InvalidInputError(f"The weight-average decay must lie in (0, 1), got {decay}; 0 turns averaging off.")
        self.model, self.decay, self.steps = model, decay, 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the model's present weights (call after each optimiser step)."""
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for name, value in self.model.state_dict().items():
            if value.is_floating_point():
                self.state[name].lerp_(value, 1.0 - d)
            else:
                self.state[name].copy_(value)
        self.steps += 1

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Inside the block the model holds the averaged weights; the raw ones come back on exit."""
        raw = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self.state)
        try:
            yield
        finally:
            self.model.load_state_dict(raw)
