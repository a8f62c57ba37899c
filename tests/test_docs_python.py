"""The Python blocks of the documentation run as written: getting started and the Python API guide, each
page's blocks in order in one namespace, from a directory that holds what they expect (a tiny random model
and index under runs/demo, a JSON-lines vector file, two photos under photos/, and `proxy:f30k/test` stood in for by a
synthetic split of the model's dimension). A block that cannot run here starts with a comment
``# not run: <reason>``."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest

from lsr.project import project_root
from tests.conftest import needs_minilm, synthetic_split

ROOT = project_root()
PAGES = ["docs/index.md", "docs/getting-started.md", "docs/guides/python-api.md", "docs/guides/image-folders.md"]
NOT_RUN = re.compile(r"# not run: \S.{10,}")  # a reason, not just the marker


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(encoding="utf-8"), re.S)


def test_every_skipped_block_says_why():
    for page in PAGES:
        blocks = python_blocks(page)
        assert blocks, page
        for block in blocks:
            first = block.splitlines()[0]
            if first.startswith("# not run"):
                assert NOT_RUN.fullmatch(first.strip()), f"{page}: a skipped block needs a reason: {first}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("make_tiny", ROOT / "examples" / "make_tiny.py")
    make_tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tiny)
    root = tmp_path_factory.mktemp("docs-python")
    make_tiny.build(root / "runs" / "demo")

    import lsr
    from lsr.exchange import write_jsonl

    encoder = lsr.load_encoder(root / "runs" / "demo" / "model")
    (root / "runs" / "export").mkdir(parents=True)
    write_jsonl(root / "runs" / "export" / "docs.jsonl", ["v1", "v2"],
                encoder.encode_document(["a red car", "a cat asleep"]), encoder.vocab)
    photos = root / "photos"
    photos.mkdir()
    skimage = pytest.importorskip("skimage")
    for name in ("chelsea.png", "coffee.png"):
        shutil.copy(Path(skimage.__file__).parent / "data" / name, photos / name)
    return root


@needs_minilm
@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run(page, workdir, monkeypatch, capsys):
    import lsr.data.sources

    def tiny_split(spec, vocab=None, max_images=None):
        assert spec == "proxy:f30k/test", spec
        split = synthetic_split(n_docs=6, per_doc=2, dim=384, name="f30k-test")
        split.doc_texts = [f"caption {i}" for i in range(6)]
        return split

    monkeypatch.setattr(lsr.data.sources, "load_split_spec", tiny_split)
    monkeypatch.chdir(workdir)
    scope: dict = {}
    ran = 0
    for number, block in enumerate(python_blocks(page), 1):
        if block.startswith("# not run:"):
            continue
        try:
            exec(compile(block, f"{page} block {number}", "exec"), scope)  # noqa: S102 - our own docs
        except Exception as exc:  # noqa: BLE001 - name the block that failed
            pytest.fail(f"{page}, python block {number} fails: {exc!r}\n{block}")
        ran += 1
    assert ran >= 1
    out = capsys.readouterr().out
    assert ("coffee.png" if "image-folders" in page else "img0") in out  # the first search printed its hits
    assert os.getcwd() == str(workdir)
