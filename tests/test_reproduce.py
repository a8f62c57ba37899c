"""`results/reproduce.yaml` covers every results row of the lab notebook (docs/lab/), and `lsr reproduce --check` holds."""

from __future__ import annotations

import copy

import yaml

from lsr.project import project_root
from lsr.reproduce import check_row, load_rows, reproduce

LAB_PAGES = "docs/lab"  # the lab notebook (once the README's results sections): every table row is a results row


def readme_result_rows() -> list[str]:
    """Table body rows of the lab notebook's pages (header and separator rows left out)."""
    rows = []
    for page in sorted((project_root() / LAB_PAGES).glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("|") or line.startswith("|---"):
                continue
            if i + 1 < len(lines) and lines[i + 1].startswith("|---"):
                continue  # a header
            rows.append(line)
    return rows


def documented_lines() -> set[str]:
    """Every line of the README and of the documentation pages (where a results row may be quoted)."""
    pages = [project_root() / "README.md", *sorted((project_root() / "docs").rglob("*.md"))]
    return {line for page in pages for line in page.read_text(encoding="utf-8").splitlines()}


def test_every_readme_results_row_has_an_entry_and_no_entry_is_stale():
    listed = {row["readme"] for row in load_rows()}
    readme = readme_result_rows()
    assert len(readme) > 40
    missing = [r for r in readme if r not in listed]
    assert not missing, "lab results rows without an entry in results/reproduce.yaml:\n" + "\n".join(missing)
    stale = sorted(listed - documented_lines())  # rows may also be lines of a printed-output block (the demo)
    assert not stale, "entries whose documented row changed or is gone:\n" + "\n".join(stale)


def test_committed_records_match_their_expected_values():
    outcomes = reproduce(check_only=True)
    assert [o for o in outcomes if o.status == "FAIL"] == []
    assert sum(o.status == "OK" for o in outcomes) >= 30


def test_a_drifted_value_fails_and_a_missing_record_has_no_source(tmp_path):
    rows = {r["name"]: r for r in load_rows()}
    drifted = copy.deepcopy(rows["f30k-default-expanded"])
    drifted["expect"]["t2i.R@1"] += 0.3
    outcome = check_row(drifted)
    assert outcome.status == "FAIL" and "t2i.R@1" in outcome.detail
    bench = copy.deepcopy(rows["bench-opensearch-1m-2"])
    bench["expect"][0] += 1.0
    assert check_row(bench).status == "FAIL"
    gone = dict(rows["f30k-dense"], record="results/does-not-exist.json")
    assert check_row(gone).status == "NO SOURCE"
    assert check_row(rows["f30k-dense"], fresh=True, root=tmp_path).status == "NO SOURCE"  # nothing was re-run


def test_cli_check_and_list(capsys, tmp_path):
    from lsr.cli.main import main

    assert main(["reproduce", "--check", "--only", "f30k-dense", "coco-dense"]) == 0
    out = capsys.readouterr().out
    assert "OK        f30k-dense" in out and "2 OK, 0 FAIL" in out
    assert main(["reproduce", "--check", "--only", "no-such-row"]) == 2
    assert main(["reproduce", "--list"]) == 0 and "lsr train" in capsys.readouterr().out
    assert yaml.safe_load((project_root() / "results/reproduce.yaml").read_text())["rows"]
