"""TREC run and qrels files, so any standard tool (trec_eval, ir-measures, ranx) can re-score rankings."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lsr.topk import topk_indices


def write_run(path: str | Path, scores: np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str],
              tag: str, depth: int = 10) -> None:
    """Write the top `depth` documents of each query (rows of `scores`) as a TREC run file."""
    top = topk_indices(scores, depth)
    with Path(path).open("w", encoding="utf-8") as f:
        for qi, row in enumerate(top):
            for rank, di in enumerate(row, 1):
                f.write(f"{query_ids[qi]} Q0 {doc_ids[di]} {rank} {float(scores[qi, di]):.6f} {tag}\n")


def write_hits_run(path: str | Path, hits: Sequence[Sequence], query_ids: Sequence[str], tag: str) -> None:
    """Write backend hits (one ranked `Hit` list per query) as a TREC run file."""
    with Path(path).open("w", encoding="utf-8") as f:
        for qid, ranked in zip(query_ids, hits):
            for rank, hit in enumerate(ranked, 1):
                f.write(f"{qid} Q0 {hit.id} {rank} {hit.score:.6f} {tag}\n")


def write_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]]) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        for qid, docs in qrels.items():
            for did, rel in docs.items():
                f.write(f"{qid} 0 {did} {rel}\n")


def read_run(path: str | Path) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        qid, _, did, _, score, _ = line.split()
        run.setdefault(qid, {})[did] = float(score)
    return run
