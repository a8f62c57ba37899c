"""Dense-to-sparse (D2S) projection: config + model, losses, schedules, training loop."""

from lsr.d2s.model import D2SConfig, D2SModel

__all__ = ["D2SConfig", "D2SModel"]
