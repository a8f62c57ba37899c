"""Cross-space retrieval on the caption proxy: MiniLM queries mapped into a GloVe document space.

Setting after Choi et al. (ECIR 2023), "Procrustes mapping between two embedding spaces": the query
encoder (MiniLM, 384-d) and the document encoder (mean GloVe 6B 50d) are unrelated and never trained
together; a map from query space to document space is fitted on training pairs (a caption's MiniLM
vector, the GloVe vector of its image's caption-0 document) and test queries are scored by cosine
against the test documents' GloVe vectors. Numbers are caption-proxy numbers on Flickr30k captions,
not the paper's data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from lsr.data.split import PairedSplit
from lsr.dense.cosine import cosine_scores
from lsr.errors import InvalidInputError
from lsr.eval.metrics import both_directions

METHODS = ("least_squares", "orthogonal", "contrastive_linear", "contrastive_gmlp")
PAPER_HEADLINE = {
    "R@10": 77.0,
    "note": "Choi et al. (ECIR 2023) headline R@10 on the paper's own data and encoders; this evaluation "
            "uses different data (Flickr30k caption proxy) and encoders, so the figures are not comparable.",
}


def _glove_docs(glove_encoder, split: PairedSplit, what: str) -> np.ndarray:
    if split.doc_texts is None:
        raise InvalidInputError(f"{split.name}: document texts are needed to encode {what} documents with GloVe.")
    return glove_encoder.encode_texts(split.doc_texts)


def _fit(method: str, X: np.ndarray, Y: np.ndarray, doc_ids: np.ndarray, *, epochs: int, batch_size: int,
         lr: float, hidden: int, temperature: float, seed: int, device: str | None, show_progress: bool):
    if method in ("least_squares", "orthogonal"):
        from lsr.dense.procrustes import ProcrustesMap

        return ProcrustesMap(method).fit(X, Y)
    if method in ("contrastive_linear", "contrastive_gmlp"):
        from lsr.dense.contrastive import ContrastiveMap

        arch = method.split("_", 1)[1]
        return ContrastiveMap(arch, hidden=hidden, temperature=temperature).fit(
            X, Y, doc_ids=doc_ids, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device,
            show_progress=show_progress)
    raise InvalidInputError(f"Unknown method {method!r}; choose from {METHODS}.")


def run_procrustes_eval(train_split: PairedSplit, test_split: PairedSplit, glove_encoder,
                        methods: Sequence[str] = METHODS, epochs: int = 10, batch_size: int = 512,
                        lr: float = 1e-3, hidden: int = 512, temperature: float = 0.05, seed: int = 0,
                        device: str | None = None, save_dir: str | Path | None = None,
                        show_progress: bool = False) -> dict:
    """Fit each map on `train_split` and evaluate MiniLM->GloVe retrieval on `test_split`, both directions.

    Training pairs: (query_emb[i], GloVe(doc_texts[query_doc[i]])); documents whose text has no GloVe
    word are dropped from training (a test document without one is an error). References on the test
    split: MiniLM-to-MiniLM cosine (upper reference: the query encoder's own space) and GloVe-to-GloVe
    (queries also encoded by GloVe: the document space's own quality). Returns a JSON-ready dict.
    """
    for m in methods:
        if m not in METHODS:
            raise InvalidInputError(f"Unknown method {m!r}; choose from {METHODS}.")
    kept_split, dropped = _known_docs(glove_encoder, train_split)
    train_docs = _glove_docs(glove_encoder, kept_split, "training")
    X, doc_ids = kept_split.query_emb, kept_split.query_doc
    Y = train_docs[doc_ids]
    if not glove_encoder.known_mask(test_split.doc_texts or []).all():
        raise InvalidInputError(f"{test_split.name}: some test documents have no GloVe word; they cannot be encoded.")
    test_docs = _glove_docs(glove_encoder, test_split, "test")

    result: dict = {
        "setting": "MiniLM caption queries mapped into the GloVe-mean space of caption-0 documents (caption proxy)",
        "train": {"split": train_split.name, "docs": len(kept_split.doc_ids), "pairs": int(len(X)),
                  "dropped_docs_without_glove_word": dropped},
        "test": {"split": test_split.name, "docs": len(test_split.doc_ids), "queries": len(test_split.query_ids)},
        "config": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "hidden": hidden,
                   "temperature": temperature, "seed": seed},
        "methods": {},
        "references": {},
        "paper": dict(PAPER_HEADLINE),
    }
    for method in methods:
        t0 = time.perf_counter()
        mapping = _fit(method, X, Y, doc_ids, epochs=epochs, batch_size=batch_size, lr=lr, hidden=hidden,
                       temperature=temperature, seed=seed, device=device, show_progress=show_progress)
        fit_s = time.perf_counter() - t0
        scores = mapping.scores(test_split.query_emb, test_docs)
        entry = both_directions(scores, test_split.query_doc)
        entry.update(fit_s=fit_s, describe=mapping.describe())
        if getattr(mapping, "history", None):
            entry["loss_history"] = list(mapping.history)
        if save_dir is not None:
            entry["saved_to"] = str(mapping.save(Path(save_dir) / method))
        result["methods"][method] = entry

    refs = result["references"]
    refs["minilm_to_minilm"] = both_directions(cosine_scores(test_split.query_emb, test_split.doc_emb),
                                               test_split.query_doc)
    if test_split.query_texts is not None:
        known = glove_encoder.known_mask(test_split.query_texts)
        q = np.zeros((len(known), test_docs.shape[1]), dtype=np.float32)
        q[known] = glove_encoder.encode_texts([t for t, k in zip(test_split.query_texts, known) if k])
        refs["glove_to_glove"] = both_directions(q @ test_docs.T, test_split.query_doc)
        refs["glove_to_glove"]["queries_without_glove_word"] = int((~known).sum())
    n_docs, n_q = len(test_split.doc_ids), len(test_split.query_ids)
    per_doc = max(1, round(n_q / n_docs))
    miss = float(np.prod([(n_q - per_doc - i) / (n_q - i) for i in range(min(10, n_q - per_doc))]))
    refs["chance"] = {"t2i": {"R@10": 100.0 * min(10, n_docs) / n_docs}, "i2t": {"R@10": 100.0 * (1.0 - miss)}}
    return result


def _known_docs(glove_encoder, split: PairedSplit) -> tuple[PairedSplit, int]:
    """`split` without the documents (and their queries) whose text has no GloVe word; and how many went."""
    if split.doc_texts is None:
        raise InvalidInputError(f"{split.name}: document texts are needed for GloVe documents.")
    known = glove_encoder.known_mask(split.doc_texts)
    if known.all():
        return split, 0
    keep_docs = np.flatnonzero(known)
    new_row = np.full(len(known), -1, dtype=np.int64)
    new_row[keep_docs] = np.arange(len(keep_docs))
    rows = np.flatnonzero(known[split.query_doc])
    return PairedSplit(
        name=split.name,
        doc_ids=[split.doc_ids[i] for i in keep_docs],
        doc_emb=split.doc_emb[keep_docs],
        query_ids=[split.query_ids[i] for i in rows],
        query_emb=split.query_emb[rows],
        query_doc=new_row[split.query_doc[rows]],
        query_tokens=[split.query_tokens[i] for i in rows],
        doc_texts=[split.doc_texts[i] for i in keep_docs],
        query_texts=[split.query_texts[i] for i in rows] if split.query_texts else None,
        meta=dict(split.meta),
    ), int((~known).sum())


def format_table(result: dict) -> str:
    """A plain-text table of R@1/5/10 per method and reference, both directions, with the paper headline."""
    head = f"{'method':<24}{'t2i R@1':>9}{'R@5':>7}{'R@10':>7}{'i2t R@1':>10}{'R@5':>7}{'R@10':>7}{'fit s':>8}"
    lines = [
        f"train: {result['train']['split']} ({result['train']['pairs']} pairs, {result['train']['docs']} docs); "
        f"test: {result['test']['split']} ({result['test']['queries']} queries, {result['test']['docs']} docs)",
        head, "-" * len(head),
    ]

    def row(name: str, entry: dict, fit_s: float | None) -> str:
        t, i = entry["t2i"], entry["i2t"]
        fit = f"{fit_s:8.1f}" if fit_s is not None else f"{'':>8}"
        return (f"{name:<24}{t['R@1']:9.1f}{t['R@5']:7.1f}{t['R@10']:7.1f}"
                f"{i['R@1']:10.1f}{i['R@5']:7.1f}{i['R@10']:7.1f}{fit}")

    for name, entry in result["methods"].items():
        lines.append(row(name, entry, entry.get("fit_s")))
    lines.append("-" * len(head))
    refs = result["references"]
    if "minilm_to_minilm" in refs:
        lines.append(row("ref: MiniLM->MiniLM", refs["minilm_to_minilm"], None))
    if "glove_to_glove" in refs:
        lines.append(row("ref: GloVe->GloVe", refs["glove_to_glove"], None))
    if "chance" in refs:
        c = refs["chance"]
        lines.append(f"{'ref: chance':<24}{'':>9}{'':>7}{c['t2i']['R@10']:7.1f}{'':>10}{'':>7}{c['i2t']['R@10']:7.1f}")
    paper = result.get("paper")
    if paper:
        lines.append(f"paper headline: R@10 = {paper['R@10']:.0f}%. {paper['note']}")
    for name, entry in result["methods"].items():
        lines.append(f"  {name}: {entry['describe']}")
    return "\n".join(lines)
