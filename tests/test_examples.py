"""Every script under examples/ runs as a user runs it (python examples/X.py, in a fresh process) on its
offline defaults: a tiny random model, a toy caption split, scikit-image's sample photos. The OpenSearch
example runs against the live node (marked `opensearch`)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest

from lsr.project import project_root
from tests.conftest import needs_minilm

ROOT = project_root()


def run_example(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_every_example_is_run_by_a_test():
    tested = set(__import__("re").findall(r"run_example\(\"(\w+\.py)\"", (ROOT / "tests" / "test_examples.py")
                                          .read_text(encoding="utf-8")))
    scripts = {p.name for p in (ROOT / "examples").glob("*.py")}
    assert scripts <= tested | {"make_tiny.py"}, scripts - tested  # make_tiny: run by the others
    assert 3 <= len(scripts - {"make_tiny.py"}) <= 5


@needs_minilm
def test_search_index_in_python(tmp_path):
    made = run_example("make_tiny.py", str(tmp_path))
    assert "index:" in made.stdout
    out = run_example("search_index.py", "--index", str(tmp_path / "index"), "--model", str(tmp_path / "model"),
                      "--mode", "hybrid:rrf", "a dog catching a frisbee").stdout
    sections = out.split("== ")[1:]
    assert [s.split(":", 1)[0] for s in sections] == ["sparse", "rerank", "hybrid", "hybrid"]
    for section in sections:
        assert len(section.strip().splitlines()) == 1 + 5  # the heading and k=5 hits
    rerank = sections[1].splitlines()[1].split()
    assert rerank[0] == "img0"  # the frozen MiniLM's cosine puts the dog caption first
    assert "a dog catches a frisbee" in sections[1]


@needs_minilm
def test_search_index_defaults_build_a_tiny_index():
    out = run_example("search_index.py", "--k", "2").stdout
    assert "tiny random model" in out and out.count("== ") == 3


def test_index_folder_of_sample_photos(tmp_path):
    pytest.importorskip("skimage")
    out = run_example("index_folder.py", "--index", str(tmp_path / "index")).stdout
    assert "first run: indexed 6 (encoded 6" in out
    assert "second run: indexed 0 (encoded 0, from cache 0), unchanged 6" in out
    assert "'cat': chelsea.png" in out and "'missile': rocket.jpg" in out
    assert (tmp_path / "index" / "images.json").is_file()  # the folder index's settings, beside the index


def test_opensearch_example_without_a_node_says_so_in_one_line():
    result = run_example("opensearch_words.py", "--url", "http://127.0.0.1:9", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: no OpenSearch node at http://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


@needs_minilm
@pytest.mark.opensearch
def test_opensearch_words_over_http(opensearch_url):
    name = f"lsr-example-{uuid.uuid4().hex[:8]}"
    out = run_example("opensearch_words.py", "--url", opensearch_url, "--name", name).stdout
    assert f"into opensearch://{opensearch_url.split('://', 1)[1]}/{name}" in out
    assert "same top-3 as lsr.Searcher: yes" in out
    assert out.count("  img") == 3  # three hits from the REST reply
    with pytest.raises(urllib.error.HTTPError) as gone:  # the example drops its index
        urllib.request.urlopen(f"{opensearch_url}/{name}", timeout=10)
    assert gone.value.code == 404


@needs_minilm
def test_evaluate_and_compare_two_runs(tmp_path):
    out = run_example("evaluate_compare.py", "--out", str(tmp_path), "--samples", "500").stdout
    assert "indexed 6 documents of toy" in out
    assert (tmp_path / "toy.sparse.t2i.run").is_file() and (tmp_path / "toy.t2i.qrels").is_file()
    table = out.split("queries\n", 1)[1].split("the same table", 1)[0].strip()
    lines = table.splitlines()
    assert lines[0].startswith("metric") and [line.split()[0] for line in lines[1:]] == ["R@1", "R@5"]
    command = out.strip().splitlines()[-1].strip()
    argv = shlex.split(command)
    assert argv[:2] == ["lsr", "compare"]
    cli = subprocess.run([sys.executable, "-m", "lsr.cli", *argv[1:]], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert table in cli.stdout  # the command line prints the same table
