"""Frozen dense encoders (never trained here): each returns L2-normalised float32 vectors.

Names load on first use, so a light submodule (`lsr.encoders.names`, which the command line's help
reads) does not pull in numpy and tqdm through `lsr.encoders.base`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"TextEncoder": "lsr.encoders.base"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lsr.encoders.base import TextEncoder


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
