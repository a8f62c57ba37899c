"""The documentation: README.md fits on a few screens and its links resolve; the generated pages (CLI
reference from the parser, results pages from results/reproduce.yaml) are complete; `mkdocs build
--strict` passes (a broken link, a missing page or a module the API reference names fails it)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from lsr.project import project_root

ROOT = project_root()


def _docs_gen():
    spec = importlib.util.spec_from_file_location("docs_gen", ROOT / "scripts" / "docs_gen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    for heading in ("## Two commands on a fresh machine", "LSR_DATA", "## A first search", "## OpenSearch",
                    "## Image folders", "## Training", "## Evaluation"):
        assert heading in text
    links = [link for link in re.findall(r"\]\(([^)\s]+)\)", text) if not link.startswith(("http:", "https:", "#"))]
    assert len(links) > 10
    broken = [link for link in links if not (ROOT / link.split("#")[0]).exists()]
    assert not broken, f"README links to missing files: {broken}"


def test_readme_commands_parse():
    """Every `lsr ...` line of the README's code blocks is a command the parser accepts (parsed, not run)."""
    import shlex

    from lsr.cli.main import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line.split(" #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
             for line in block.splitlines()]
    commands = [line.split("&& ", 1)[-1] for line in lines if "lsr " in line and not line.startswith("#")]
    assert len(commands) >= 4
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "lsr", command
        try:
            build_parser().parse_args(argv[1:])
        except SystemExit as exc:
            pytest.fail(f"README command does not parse ({exc.code}): {command}")


def test_cli_reference_lists_every_subcommand_and_flag():
    from lsr.cli.main import build_parser

    page = _docs_gen().cli_reference()
    parser = build_parser()
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices
    for name, sub in commands.items():
        assert f"## `lsr {name}`" in page
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            for flag in action.option_strings:
                assert f"`{flag}`" in page, f"lsr {name} {flag} missing from the CLI reference"


def test_results_pages_hold_every_row_with_the_recorded_values():
    from lsr.reproduce import load_rows

    pages = _docs_gen().results_pages()
    rows = load_rows()
    summary = pages["results/summary.md"]
    assert f"{len(rows)} rows" in summary and "| 0 |" in summary  # FAIL column: nothing fails
    body = "\n".join(text for path, text in pages.items() if path != "results/summary.md")
    assert body.count("| OK |") + body.count("| NO SOURCE |") + body.count("| FAIL |") == len(rows)
    assert "| FAIL |" not in body
    # a value read from its record, at the precision the notes quote (D2S default, Flickr30k test, t2i R@1)
    assert re.search(r"\| \*\*D2S default \(10 epochs.*?\| 52\.7 \|", body)


def test_benchmarks_page_shows_the_cli_startup_record():
    import json

    page = _docs_gen().results_pages()["results/benchmarks.md"]
    record = json.loads((ROOT / "results" / "cli_startup.json").read_text(encoding="utf-8"))
    assert "## Command-line start-up" in page
    for row in record["rows"]:  # every command with its median, read from the record
        assert f"| `{row['command']}` | {row['median_s']:.3f} |" in page


def test_examples_page_includes_every_example_script():
    page = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert f'--8<-- "examples/{script.name}"' in page, f"docs/examples.md does not include {script.name}"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None
                    or importlib.util.find_spec("mkdocstrings_handlers") is None,
                    reason="mkdocs, mkdocs-material or mkdocstrings[python] not installed: pip install -e '.[docs]'")
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "lsr search" in cli and "--index" in cli
    assert "52.7" in (site / "results" / "training" / "index.html").read_text(encoding="utf-8")
    assert "lsr.search.searcher.SparseSearcher" in (site / "reference" / "search" / "index.html").read_text(
        encoding="utf-8")
    assert (site / "changelog" / "index.html").is_file() and (site / "lab" / "benchmarks" / "index.html").is_file()
    examples = (site / "examples" / "index.html").read_text(encoding="utf-8")
    assert "open_index" in examples and "index_folder" in examples and "compare_runs" in examples  # the scripts
