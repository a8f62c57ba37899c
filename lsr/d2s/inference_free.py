"""Training inference-free queries: a non-negative weight per vocabulary token, by the D2S distillation loss.

A caption (query) is its own distinct tokens, each weighted w[t] = clamp(table[t], 0, 64); an image (document) is
the D2S projection of its dense vector. score(caption, image) = sum over the caption's tokens of
w[t] * image[t], distilled from the frozen dense model's scores exactly as D2S is (soft-label
cross-entropy, both directions, temperature tau), with the L1 penalty (quadratic warm-up) on the query
weights and, when the projection trains too, on the documents.

- variant (b), ``train_documents=False``: only the table learns; the documents are a frozen D2S model's.
- variant (c), ``train_documents=True``: the table and the document projection learn together.
The table starts from IDF over the training captions; the best dev epoch (text->image R@1) is kept.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lsr.d2s.config import InferenceFreeConfig  # noqa: F401 (re-exported: the settings live there)
from lsr.d2s.losses import distillation_loss, l1_penalty
from lsr.d2s.model import D2SModel, pad_token_ids
from lsr.d2s.schedules import sparsity_weight
from lsr.d2s.sparse_backward import ActiveColumns
from lsr.data.split import PairedSplit
from lsr.devices import adamw, resolve_device
from lsr.encoders.inference_free import WEIGHT_CEILING, distinct_non_special, query_vectors
from lsr.errors import InvalidInputError
from lsr.eval.metrics import t2i_metrics
from lsr.sparse import flops

log = logging.getLogger(__name__)


@dataclass
class InferenceFreeResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("-inf")
    seconds: float = 0.0


def own_tokens(token_ids: Sequence[np.ndarray], special_ids: Sequence[int]) -> list[np.ndarray]:
    """Each text's distinct token ids without special tokens (what a query keeps)."""
    return [distinct_non_special(t, sorted(special_ids)) for t in token_ids]


def table_scores(table: torch.Tensor, tokens: torch.Tensor, docs: ActiveColumns) -> tuple[torch.Tensor, torch.Tensor]:
    """(documents x queries) scores and the queries' weights (batch, L) for padded query tokens (-1 = pad)."""
    valid = tokens >= 0
    safe = tokens.clamp(min=0)
    weights = table[safe].clamp(0.0, WEIGHT_CEILING) * valid  # OpenSearch takes query weights up to 64
    return torch.einsum("ibl,bl->ib", docs.at(safe), weights), weights


def evaluate_table(model: D2SModel, table: np.ndarray, split: PairedSplit, query_tokens: Sequence[np.ndarray],
                   device: str | None = None) -> dict:
    """Text->image R@K of table-weighted queries against the model's documents, with nnz and FLOPs."""
    queries = query_vectors(table, query_tokens)
    docs = model.encode(split.doc_emb, device=device)
    out = {"t2i": t2i_metrics(queries.dot(docs), split.query_doc)}
    out["query_nnz"] = queries.sparsity()["mean_nnz"]
    out["doc_nnz"] = docs.sparsity()["mean_nnz"]
    out["flops"] = flops(queries, docs)
    return out


def train_table(model: D2SModel, table: np.ndarray, train_split: PairedSplit, train_tokens: Sequence[np.ndarray],
                val_split: PairedSplit | None = None, val_tokens: Sequence[np.ndarray] | None = None,
                config: InferenceFreeConfig | None = None, show_progress: bool = True) -> tuple[np.ndarray, InferenceFreeResult]:
    """Learn the query table (and, with `train_documents`, the model in place); returns the best table.

    `train_tokens` / `val_tokens`: each query caption's distinct non-special token ids (`own_tokens`).
    """
    cfg = config or InferenceFreeConfig()
    if len(train_tokens) != len(train_split.query_ids):
        raise InvalidInputError(f"{len(train_tokens)} token lists for {len(train_split.query_ids)} training captions.")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    model.to(device).train(cfg.train_documents)
    for p in model.parameters():
        p.requires_grad_(cfg.train_documents)
    raw = torch.nn.Parameter(torch.as_tensor(np.asarray(table, dtype=np.float32), device=device).clone())
    groups = [{"params": [raw], "lr": cfg.lr_table}]
    if cfg.train_documents:
        groups += [{"params": list(model.proj.parameters()), "lr": cfg.lr_proj},
                   {"params": list(model.layer_norm.parameters()) + list(model.vocab_projector.parameters()),
                    "lr": cfg.lr}]
    optimizer = adamw(groups, device)

    q_emb, d_emb = torch.from_numpy(train_split.query_emb), torch.from_numpy(train_split.doc_emb)
    n = len(train_split.query_ids)
    steps_per_epoch = max(1, n // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.sparsity_warmup * total)
    result, best = InferenceFreeResult(), (raw.detach().cpu().numpy().copy(), None)
    step, t_start = 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        sums = {"loss": 0.0, "rank": 0.0, "q_nnz": 0.0, "d_nnz": 0.0}
        t_epoch = time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not show_progress,
                   unit="batch")
        for i in bar:
            rows = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            captions = q_emb[rows].to(device)
            images = d_emb[train_split.query_doc[rows]].to(device)
            with torch.set_grad_enabled(cfg.train_documents):
                docs = model.active(images)
            tokens = pad_token_ids([train_tokens[r] for r in rows]).to(device)
            scores, weights = table_scores(raw, tokens, docs)
            rank = distillation_loss(scores, images @ captions.t(), cfg.temperature)
            lam = sparsity_weight(step, 1.0, warmup)
            reg = cfg.lambda_q * weights.sum(dim=1).mean()
            if cfg.train_documents:
                reg = reg + cfg.lambda_d * l1_penalty(docs.values)
            loss = rank + lam * reg / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            sums["loss"] += loss.item()
            sums["rank"] += rank.item()
            sums["q_nnz"] += float((weights > 0).sum(dim=1).float().mean())
            sums["d_nnz"] += docs.nnz_per_row()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        record = {"epoch": epoch + 1, "seconds": time.perf_counter() - t_epoch,
                  **{k: v / steps_per_epoch for k, v in sums.items()}}
        current = raw.detach().cpu().numpy().copy()
        if val_split is not None and val_tokens is not None:
            model.eval()
            record["val"] = evaluate_table(model, current, val_split, val_tokens, device=str(device))
            model.train(cfg.train_documents)
            score = record["val"]["t2i"]["R@1"]
            if score >= result.best_score:
                result.best_score, result.best_epoch = score, epoch + 1
                best = (current, copy.deepcopy(model.state_dict()) if cfg.train_documents else None)
        else:  # no dev split: the last epoch
            best = (current, copy.deepcopy(model.state_dict()) if cfg.train_documents else None)
            result.best_epoch = epoch + 1
        result.history.append(record)
        log.info("epoch %d: loss %.3f q_nnz %.1f d_nnz %.1f%s", epoch + 1, record["loss"], record["q_nnz"],
                 record["d_nnz"], f" dev t2i R@1 {record['val']['t2i']['R@1']:.1f}" if "val" in record else "")
    if best[1] is not None:
        model.load_state_dict(best[1])
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    result.seconds = time.perf_counter() - t_start
    return np.clip(best[0], 0.0, WEIGHT_CEILING).astype(np.float32), result


def save_training(directory: str | Path, config: InferenceFreeConfig, result: InferenceFreeResult) -> None:
    Path(directory, "training.json").write_text(json.dumps(
        {"query_encoder": "inference-free", "config": asdict(config), "best_epoch": result.best_epoch,
         "history": result.history}, indent=2))
