"""The OpenSearch definitions the backends send: index mappings and pipelines, as package data.

The JSON files live once, in the checkout's top-level ``mappings/`` and ``pipelines/`` folders; packaging maps
those folders onto the subpackages ``lsr.definitions.mappings`` and ``lsr.definitions.pipelines`` (``setup.py``),
so an editable install, a wheel and ``pip install --user`` all read them through `importlib.resources`, wherever
the package is installed and whatever the working directory.

    >>> from lsr.definitions import load_definition, definition_names
    >>> sorted(definition_names("pipelines"))[:2]
    ['hybrid_normalization.json', 'hybrid_rrf.json']
    >>> load_definition("mappings", "sparse_rank_features.json")["mappings"]["dynamic"]
    'strict'
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable

from lsr.errors import InvalidInputError, MissingFileError

KINDS = ("mappings", "pipelines")


def _folder(kind: str) -> Traversable:
    if kind not in KINDS:
        raise InvalidInputError(f"Unknown definition kind {kind!r}; use {' or '.join(KINDS)}.")
    try:
        return resources.files(f"{__name__}.{kind}")
    except ModuleNotFoundError:
        raise MissingFileError(
            f"The package data {__name__}.{kind} is missing: this install predates it. Reinstall the package "
            "(`pip install -e .` in a checkout).") from None


def definition_names(kind: str) -> list[str]:
    """The file names of every definition of `kind` (``"mappings"`` or ``"pipelines"``), sorted."""
    return sorted(entry.name for entry in _folder(kind).iterdir() if entry.name.endswith(".json"))


def load_definition(kind: str, name: str) -> dict:
    """The JSON definition `name` (e.g. ``"two_phase.json"``) of `kind` (``"mappings"`` or ``"pipelines"``),
    a fresh dict on every call (callers fill it in)."""
    entry = _folder(kind).joinpath(name)
    if not entry.is_file():
        known = ", ".join(definition_names(kind))
        raise MissingFileError(f"{kind}/{name} is not a packaged definition; the {kind} are: {known}.")
    return json.loads(entry.read_text(encoding="utf-8"))
