"""Reproduction checks in the pyserini "2CR" spirit: `results/reproduce.yaml` lists every results row
the documentation reports (the lab notebook's tables, docs/lab/*.md; a row's ``readme`` key holds the
row as written there), with the command that produces it, the file that command writes, the committed
measurement, the expected values and a tolerance.

    lsr reproduce --check            # compare every committed record with its expected values
    lsr reproduce --only f30k-dense  # re-run that row's command, then check the fresh output

Each row ends OK, FAIL (with the values that differ), NO SOURCE (no record was kept, or the row
quotes a figure measured elsewhere) or STALE (the record holds the values, but a source file it measured,
listed with its digest in the record's ``sources`` by `lsr.provenance.benchmark_record`, changed since:
re-run the row's command); the exit status is 1 when any row FAILs (STALE is informational).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from lsr.errors import InvalidInputError
from lsr.project import project_root
from lsr.provenance import stale_sources

REPRODUCE_FILE = "results/reproduce.yaml"


@dataclass
class Outcome:
    name: str
    status: str  # "OK", "FAIL", "NO SOURCE" or "STALE"
    detail: str = ""


def load_rows(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The rows of the reproduction file (default: the project's `results/reproduce.yaml`)."""
    path = Path(path) if path is not None else project_root() / REPRODUCE_FILE
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["rows"]
    names = [r["name"] for r in rows]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"{path} repeats row names: {sorted({n for n in names if names.count(n) > 1})}.")
    return rows


def measured(row: dict[str, Any], source: Path) -> dict[str, float]:
    """The row's values as found in `source`: by JSON path (`key`) or by a regex's groups (`pattern`)."""
    text = source.read_text(encoding="utf-8")
    if "pattern" in row:
        match = re.search(row["pattern"], text)
        if match is None:
            raise InvalidInputError(f"pattern not found in {source}")
        return {str(i): float(g.replace(",", "")) for i, g in enumerate(match.groups())}
    node: Any = json.loads(text)
    for part in filter(None, row.get("key", "").split("/")):  # no key: paths from the record's root
        node = _step(node, part)
    out = {}
    for name in row["expect"]:
        value: Any = node
        for part in name.split("."):
            value = _step(value, part)
        out[name] = float(value)
    return out


def _step(node: Any, part: str) -> Any:
    """One step of a record path: a key of an object, or a position in a list."""
    return node[int(part)] if isinstance(node, list) else node[part]


def compare(row: dict[str, Any], source: Path) -> Outcome:
    """OK when every expected value is within the row's tolerance of the one in `source`."""
    expect = row["expect"]
    pairs = expect.items() if isinstance(expect, dict) else ((str(i), v) for i, v in enumerate(expect))
    tol = row.get("tolerance", 0.05)
    try:
        found = measured(row, source)
    except (KeyError, ValueError, IndexError) as exc:
        return Outcome(row["name"], "FAIL", f"{source}: {exc}")
    off = []
    for i, (name, want) in enumerate(pairs):
        limit = tol[i] if isinstance(tol, list) else tol
        if abs(found[name] - float(want)) > limit + 1e-9:
            off.append(f"{name} {found[name]:g} (expected {want:g} +- {limit:g})")
    return Outcome(row["name"], "FAIL" if off else "OK", "; ".join(off))


def check_row(row: dict[str, Any], fresh: bool = False, root: Path | None = None) -> Outcome:
    """Check the committed record (or, with `fresh`, the command's output) of one row."""
    root = root or project_root()
    where = row.get("output") if fresh else row.get("record")
    if not row.get("expect") or not where:
        return Outcome(row["name"], "NO SOURCE", row.get("note", "no record kept"))
    if not (root / where).is_file():
        return Outcome(row["name"], "NO SOURCE", f"{where} does not exist")
    outcome = compare(row, root / where)
    if outcome.status == "OK" and not fresh:
        changed = stale_record(root / where, root)
        if changed:
            return Outcome(row["name"], "STALE", "measured files changed since the record: " + ", ".join(changed))
    return outcome


def stale_record(record: Path, root: Path) -> list[str]:
    """The files a benchmark record measured (its ``sources``) that changed since; [] for other records."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except ValueError:
        return []
    return stale_sources(data, root) if isinstance(data, dict) and data.get("sources") else []


def command_argv(command: str) -> list[str]:
    """A row's command as argv: ``python`` (``python -m experiments.modes ...``, ``python benchmarks/...``) is
    this interpreter, so a row runs in the environment `lsr` runs in."""
    argv = shlex.split(command)
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    return argv


def run_row(row: dict[str, Any], root: Path | None = None) -> int:
    """Run a row's command in the project root (where ``experiments`` and ``benchmarks`` are); its exit status."""
    if not row.get("command"):
        return 0
    return subprocess.run(command_argv(row["command"]), cwd=root or project_root(), check=False).returncode


def reproduce(only: Sequence[str] = (), check_only: bool = True, path: str | Path | None = None) -> list[Outcome]:
    """Check (and unless `check_only`, first re-run) the rows named in `only` (all when empty)."""
    rows = load_rows(path)
    if only:
        unknown = set(only) - {r["name"] for r in rows}
        if unknown:
            raise InvalidInputError(f"No rows named {sorted(unknown)} in {REPRODUCE_FILE}; see `lsr reproduce --list`.")
        rows = [r for r in rows if r["name"] in only]
    outcomes, ran = [], set()
    for row in rows:
        if not check_only and row.get("command") and row["command"] not in ran:
            ran.add(row["command"])
            if run_row(row) != 0:
                outcomes.append(Outcome(row["name"], "FAIL", f"command failed: {row['command']}"))
                continue
        outcomes.append(check_row(row, fresh=not check_only))
    return outcomes
