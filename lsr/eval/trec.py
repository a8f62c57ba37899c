"""TREC run and qrels files, so any standard tool (trec_eval, ir-measures, ranx) can re-score rankings."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from lsr.errors import InvalidInputError
from lsr.topk import topk_indices

RUN_LAYOUT = "qid Q0 docid rank score tag"


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
    """query id -> {document id: score} from a TREC run file."""
    run: dict[str, dict[str, float]] = {}
    for qid, _, did, _, score, _ in _trec_fields(path, RUN_LAYOUT):
        run.setdefault(qid, {})[did] = float(score)
    return run


def _trec_fields(path: str | Path, layout: str) -> Iterator[list[str]]:
    """The whitespace-separated fields of each non-empty line; a line not of `layout`'s four or six fields,
    with an integer in the rank / relevance place, is an error naming the file and line."""
    width = len(layout.split())
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            parts = line.split()
            if len(parts) != width or not parts[3].lstrip("-").isdigit():
                raise InvalidInputError(f"{path}:{number} is not a TREC line '{layout}'.")
            yield parts


def read_ranking(path: str | Path) -> dict[str, list[str]]:
    """query id -> its documents in rank order (the rank column) from a TREC run file."""
    ranked: dict[str, list[tuple[int, str]]] = {}
    for qid, _, doc, rank, _, _ in _trec_fields(path, RUN_LAYOUT):
        ranked.setdefault(qid, []).append((int(rank), doc))
    return {qid: [doc for _, doc in sorted(docs)] for qid, docs in ranked.items()}


def read_qrels(path: str | Path) -> dict[str, set[str]]:
    """query id -> its relevant document ids (relevance > 0) from a TREC qrels file."""
    qrels: dict[str, set[str]] = {}
    for qid, _, doc, relevance in _trec_fields(path, "qid 0 docid relevance"):
        docs = qrels.setdefault(qid, set())
        if int(relevance) > 0:
            docs.add(doc)
    if not qrels:
        raise InvalidInputError(f"{path} has no judgements.")
    return qrels
