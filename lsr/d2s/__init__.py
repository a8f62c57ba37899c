"""Dense-to-sparse (D2S) projection: config + model, losses, schedules, training loop.

`D2SConfig` and `D2SModel` load on first use, so that `lsr.d2s.config` (the training settings, no torch) can be
imported without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lsr.d2s.model import D2SConfig, D2SModel

__all__ = ["D2SConfig", "D2SModel"]


def __getattr__(name: str):
    if name in __all__:
        from lsr.d2s import model

        return getattr(model, name)
    raise AttributeError(f"module 'lsr.d2s' has no attribute {name!r}")
