"""The product installs on its own: a wheel built from the checkout, installed into a fresh virtual environment
outside it, loads every mapping and pipeline through the package and runs `lsr --help` from elsewhere.

The environment sees this interpreter's site-packages (``--system-site-packages``: torch and the rest are not
installed again); the wheel goes in with ``--no-deps --ignore-installed`` beside the checkout's editable install,
and the test checks that the venv's copy of `lsr` is the one imported. About 15-30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lsr.project import project_root

SOURCES = ("pyproject.toml", "setup.py", "README.md", "lsr", "mappings", "pipelines")

CHECK = """
import json, sys
import lsr
from lsr.definitions import definition_names, load_definition
from lsr.backends.opensearch.client import two_phase_pipeline
loaded = {kind: {name: load_definition(kind, name) for name in definition_names(kind)}
          for kind in ("mappings", "pipelines")}
two_phase_pipeline({"prune_ratio": 0.1})
print(json.dumps({"lsr": lsr.__file__, "prefix": sys.prefix,
                  "names": {kind: sorted(v) for kind, v in loaded.items()},
                  "experiments": __import__("importlib.util").util.find_spec("experiments") is not None}))
"""


def _run(argv: list, cwd: Path, env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv directory, wheel path, a directory outside the checkout, environment) of a fresh install."""
    root = project_root()
    work = tmp_path_factory.mktemp("wheel-install")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_USER")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    src = work / "src"  # a copy of what the wheel is built from: the build leaves nothing in the checkout
    src.mkdir()
    for name in SOURCES:
        if (root / name).is_dir():
            shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(root / name, src / name)
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", dist, src], cwd=work, env=env)
    wheel = next(dist.glob("*.whl"))
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=work, env=env)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", wheel],
         cwd=work, env=env)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return venv, wheel, elsewhere, env


def test_the_wheel_holds_the_package_and_its_data_but_not_the_lab(installed):
    _, wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    root = project_root()
    for kind in ("mappings", "pipelines"):
        for path in (root / kind).glob("*.json"):
            assert f"lsr/definitions/{kind}/{path.name}" in names
    assert {"lsr/serve/static/index.html", "lsr/serve/static/app.js"} <= set(names)
    for marker in ("lsr/py.typed", "lsr/__init__.pyi"):
        if (root / marker).exists():
            assert marker in names
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"lsr"}, tops  # no experiments/, benchmarks/, tests/, top-level mappings/
    assert not [n for n in names if n.startswith("lsr/definitions/") and n.endswith(".md")]


def test_the_installed_package_loads_every_definition_and_runs_the_cli(installed):
    venv, _, elsewhere, env = installed
    out = _run([venv / "bin" / "python", "-c", CHECK], cwd=elsewhere, env=env)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(seen["lsr"]).resolve().is_relative_to(venv.resolve()), seen["lsr"]  # not the checkout's
    assert Path(seen["prefix"]).resolve() == venv.resolve()
    root = project_root()
    for kind in ("mappings", "pipelines"):
        assert seen["names"][kind] == sorted(p.name for p in (root / kind).glob("*.json"))
    assert seen["experiments"] is False  # the lab stays in the checkout
    help_ = _run([venv / "bin" / "lsr", "--help"], cwd=elsewhere, env=env, timeout=120)
    assert help_.stdout.startswith("usage: lsr")
    head = (venv / "bin" / "lsr").read_text().splitlines()[0]
    assert str(venv) in head  # the venv's console script, run by the venv's interpreter
