"""`lsr --help` and every `lsr SUBCOMMAND --help` build the parser from light modules only: no torch,
transformers, opensearch-py or web server is imported (each costs seconds on a busy machine). Not a timing
test: the times are `benchmarks/bench_cli_startup.py`'s (results/cli_startup.json)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a --help must never import: each is a heavy dependency of one command's work, not of its flags.
HEAVY = ("torch", "transformers", "tokenizers", "safetensors", "opensearchpy", "starlette", "uvicorn", "PIL",
         "matplotlib", "lavis")


def imported_by(*args: str) -> set[str]:
    """The top-level packages that ``python -m lsr.cli ARGS`` imports (read from ``-X importtime``)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "lsr.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("args", [("--help",), ("opensearch", "--help")], ids=["lsr", "lsr-opensearch"])
def test_help_imports_nothing_heavy(args):
    heavy = sorted(set(HEAVY) & imported_by(*args))
    assert not heavy, (f"`lsr {' '.join(args)}` imports {', '.join(heavy)}; build the parser from light modules "
                       "and import these inside the command's function (python -X importtime -m lsr.cli "
                       f"{' '.join(args)} 2>&1 | sort -t'|' -k2 -n | tail shows who pulls them in)")


def test_every_subcommand_help_imports_nothing_heavy():
    """One process prints every subcommand's --help (read from the parser itself) and reports what it
    imported: the same guard for all of them at the cost of one interpreter start."""
    script = f"""
import argparse, contextlib, io, json, sys
from lsr.cli.main import build_parser
parser = build_parser()
at_start = sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))
names = [n for a in parser._actions if isinstance(a, argparse._SubParsersAction) for n in a.choices]
culprits = {{}}
for name in names:
    before = set(sys.modules)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args([name, "--help"])
        except SystemExit:
            pass
    new = {{m.split(".")[0] for m in set(sys.modules) - before}} & set({list(HEAVY)!r})
    if new:
        culprits[name] = sorted(new)
print(json.dumps({{"names": names, "heavy_at_start": at_start, "culprits": culprits}}))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(found["names"]) >= 5, found["names"]
    assert not found["culprits"], f"--help of these subcommands imports heavy modules: {found['culprits']}"
    assert not found["heavy_at_start"], f"building the parser imports {found['heavy_at_start']}"
