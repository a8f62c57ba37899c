"""Frozen dense encoders (never trained here): each returns L2-normalised float32 vectors.

Names load on first use, so a light submodule (`lsr.encoders.names`, which the command line's help
reads) does not pull in numpy and tqdm through `lsr.encoders.base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsr.lazy import lazy_exports

_EXPORTS = {"TextEncoder": "lsr.encoders.base"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from lsr.encoders.base import TextEncoder

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
