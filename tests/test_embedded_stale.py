"""Benchmark figures cannot go stale silently: a record keeps the digests of the files it measured, and
`lsr reproduce --check` reports STALE once one of them changes (here: in a temporary clone)."""

from __future__ import annotations

import json
import subprocess

import pytest

from lsr.provenance import benchmark_record, stale_sources
from lsr.project import project_root
from lsr.reproduce import check_row


@pytest.fixture
def clone(tmp_path):
    target = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--shared", str(project_root()), str(target)], check=True)
    return target


def test_a_changed_measured_file_makes_the_record_stale(clone):
    sources = ["lsr/topk.py", "lsr/backends/validate.py"]
    record = benchmark_record("bench-test", "python benchmarks/bench_peers.py", sources, clone, {"p50": 1.5})
    assert record["commit"] and record["machine"]["cores"] >= 1 and set(record["sources"]) == set(sources)
    (clone / "results" / "bench-test.json").write_text(json.dumps(record))
    row = {"name": "bench-test", "record": "results/bench-test.json", "key": "results", "expect": {"p50": 1.5},
           "tolerance": 0.01}
    assert check_row(row, root=clone).status == "OK"
    with open(clone / "lsr" / "topk.py", "a", encoding="utf-8") as fh:
        fh.write("\n# a change to the measured code\n")
    outcome = check_row(row, root=clone)
    assert outcome.status == "STALE" and "lsr/topk.py" in outcome.detail and "validate" not in outcome.detail
    assert stale_sources(record, clone) == ["lsr/topk.py"]
    (clone / "lsr" / "backends" / "validate.py").unlink()
    assert stale_sources(record, clone) == sources
    drifted = dict(row, expect={"p50": 2.5})
    assert check_row(drifted, root=clone).status == "FAIL"  # a wrong value is still a failure first


def test_records_without_sources_are_never_stale(clone):
    (clone / "results" / "plain.json").write_text(json.dumps({"results": {"x": 1.0}}))
    row = {"name": "plain", "record": "results/plain.json", "key": "results", "expect": {"x": 1.0}}
    assert check_row(row, root=clone).status == "OK"


def _docs_gen():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_gen", project_root() / "scripts" / "docs_gen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_embedded_engine_guide_takes_its_figures_from_records():
    gen = _docs_gen()
    text = (project_root() / "docs" / "guides" / "embedded-engine.md").read_text(encoding="utf-8")
    marks = gen.RECORD_MARK.findall(text)
    assert {kind for _, kind, _ in marks} >= {"peers", "targets", "build", "memory", "machine"}
    rendered = gen.render_records(text)
    assert "<!-- record:" not in rendered
    record = json.loads((project_root() / "results" / "bench-peers-1m.json").read_text())
    exact = next(r for r in record["results"]["1000000"]["table"] if r["engine"] == "embedded exact")
    assert f"| {exact['queries']} | embedded exact | - | {exact['p50_ms']:,.2f} |" in rendered
    build = json.loads((project_root() / "results" / "bench-peers-build.json").read_text())
    after = build["results"]["sizes"]["1000000"]["best_docs_per_s"]["after"]
    assert f"{after:,}" in rendered
