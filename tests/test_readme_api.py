"""The README's first-search Python block runs as written (on a tiny model saved where it expects runs/demo)."""

from __future__ import annotations

import os
import re

import torch

from lsr.project import project_root
from tests.conftest import needs_minilm


def readme_api_block() -> str:
    text = (project_root() / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## A first search"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@needs_minilm
def test_readme_python_api_runs_as_written(tmp_path, capsys):
    from lsr import D2SConfig, D2SModel, EmbeddedIndex
    from lsr.encoders.sparse import D2SEncoder

    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=384, hidden_dim=16, dense_encoder={"name": "minilm", "path": None},
                               min_weight=0.5))
    model.save_pretrained(tmp_path / "runs/demo/model")
    encoder = D2SEncoder(model)
    captions = ["a dog catches a frisbee in a park", "two men play guitars on a stage", "a child in a pink dress"]
    with EmbeddedIndex(directory=tmp_path / "runs/demo/index") as index:
        index.index([f"img{i}" for i in range(3)], encoder.encode_document(captions), [{"caption": c} for c in captions],
                    dense=encoder.encode_query_dense(captions))  # as `lsr demo` indexes: with the dense vectors
        index.record_provenance(encoder.provenance())
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        scope: dict = {}
        exec(compile(readme_api_block(), "README.md", "exec"), scope)  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "img0" in out and len(out.strip().splitlines()) == 3  # k=5 over three documents
    assert [h.stages is not None for h in scope["reranked"] + scope["fused"]] == [True] * 4
    assert scope["searcher"].search("a dog catching a frisbee", k=1)[0].id == next(iter(out.split()))
