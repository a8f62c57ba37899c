"""Names a package exports but imports on first use, so that importing the package (or a light submodule
of it, such as the modules the command line's help reads) does not pull in torch, numpy or a client.

    __getattr__, __dir__ = lazy_exports(__name__, {"EmbeddedIndex": "lsr.backends.embedded"})

Type checkers read the same names from an ``if TYPE_CHECKING:`` import block or a ``.pyi`` stub beside it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of `package`, loading each name of `exports`
    (name -> defining module) on first access and keeping it in the package's namespace after."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
