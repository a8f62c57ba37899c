"""Where the project's checkout is (definitions, results and the README live beside the package)."""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The checkout root: the directory above the `lsr` package."""
    return Path(__file__).resolve().parents[1]
