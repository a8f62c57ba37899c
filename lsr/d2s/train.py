"""Training loop: distil a frozen dense model into D2S with Bernoulli expansion control.

Each batch draws ONE Bernoulli(p): if 1, its captions are encoded without expansion (restricted to their
own tokens); images are never masked. p decays linearly from 1 to 0 over 95% of the epochs.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lsr.d2s.averaging import WeightAverage
from lsr.d2s.config import OBJECTIVE_DEFAULTS, TrainConfig  # noqa: F401 (re-exported: the settings live there)
from lsr.d2s.joint import JointObjective
from lsr.d2s.losses import PENALTIES, distillation_loss
from lsr.d2s.model import D2SModel, pad_token_ids
from lsr.d2s.sparse_backward import ActiveColumns, active_scores, column_means
from lsr.d2s.static_pruning import ThresholdPoint, smallest_within, threshold_curve
from lsr.d2s.schedules import expansion_control_p, lr_factor, sparsity_weight
from lsr.data.split import PairedSplit
from lsr.devices import adamw, resolve_device
from lsr.errors import InvalidInputError
from lsr.eval.evaluate import evaluate_dense_head, evaluate_sparse

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float = float("-inf")
    seconds: float = 0.0
    # with a FLOPs budget: the chosen epoch's dev static-pruning curve, so that choosing its threshold after
    # training does not compute it again
    best_curve: list[ThresholdPoint] | None = None


def caption_scores_no_expansion(model: D2SModel, caption_dense: torch.Tensor, token_ids: torch.Tensor,
                                images: ActiveColumns) -> tuple[torch.Tensor, torch.Tensor]:
    """(images x captions) scores and the captions' own-token weights (batch, L) for no-expansion captions.

    Equal to masking the full |V|-wide caption vector to its own tokens, but computes only those L
    logits per caption instead of all 30,522.
    """
    hidden = model.hidden(caption_dense)
    valid = token_ids >= 0
    safe = token_ids.clamp(min=0)
    logits = torch.einsum("blh,bh->bl", model.vocab_projector.weight[safe], hidden) + model.vocab_projector.bias[safe]
    weights = torch.log1p(torch.relu(logits)) * valid
    scores = torch.einsum("ibl,bl->ib", images.at(safe), weights)
    return scores, weights


@dataclass
class BatchLoss:
    loss: torch.Tensor
    rank: torch.Tensor  # the ranking part (distillation or the joint objective), without the sparsity penalty
    caption_nnz: float
    image_nnz: float
    parts: dict = field(default_factory=dict)


def batch_loss(model: D2SModel, cfg: TrainConfig, images: torch.Tensor, captions: torch.Tensor,
               positives: torch.Tensor, tokens: torch.Tensor | None = None, joint: JointObjective | None = None,
               lam: float = 1.0) -> BatchLoss:
    """The loss of one batch: (images x captions) sparse scores, `positives` marking matching pairs;
    with `tokens` (padded caption token ids) the captions are not expanded. `lam` scales the sparsity
    penalty (its warm-up). `cfg` must be resolved (`TrainConfig.resolved()`), as `train` does once."""
    if cfg.sparsity is None:
        raise InvalidInputError("batch_loss needs a resolved TrainConfig: pass cfg.resolved().")
    penalty = PENALTIES[cfg.sparsity]
    image_sparse = model.active(images)  # the batch's active columns only (`lsr.d2s.sparse_backward`)
    if tokens is not None:
        scores, caption_weights = caption_scores_no_expansion(model, captions, tokens, image_sparse)
    else:
        caption_sparse = model.active(captions)  # from the CAPTION embeddings, never the image's
        scores = active_scores(image_sparse, caption_sparse)
        caption_weights = caption_sparse.values
    parts = {}
    if joint is None:
        rank_loss = distillation_loss(scores, images @ captions.t(), cfg.temperature)
    else:
        rank_loss, parts = joint(model, images, captions, scores, positives)
    if tokens is not None and cfg.sparsity == "flops":  # the captions' own tokens, column by column
        caption_penalty = (column_means(tokens.clamp(min=0), caption_weights, len(captions),
                                        image_sparse.vocab_size) ** 2).sum()
    else:
        caption_penalty = penalty(caption_weights)
    reg = lam * (cfg.lambda_q * caption_penalty + cfg.lambda_d * penalty(image_sparse.values)) / 2
    with torch.no_grad():
        caption_nnz = float((caption_weights > 0).sum(dim=1).float().mean())
    return BatchLoss(rank_loss + reg, rank_loss, caption_nnz, image_sparse.nnz_per_row(), parts)


def epoch_batches(query_doc: np.ndarray, batch_size: int, rng: np.random.Generator,
                  group_by_image: bool = False) -> list[np.ndarray]:
    """One epoch's batches of caption rows (the last incomplete batch dropped). Random pairs, or with
    `group_by_image` images in random order, each followed by its captions in random order."""
    n = len(query_doc)
    if group_by_image:
        image_rank = rng.permutation(int(query_doc.max()) + 1)[query_doc]
        order = np.lexsort((rng.random(n), image_rank))  # by image (random order), then random within an image
    else:
        order = rng.permutation(n)
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(max(1, n // batch_size))]


def train(model: D2SModel, train_split: PairedSplit, val_split: PairedSplit | None = None,
          config: TrainConfig | None = None, out_dir: str | Path | None = None,
          show_progress: bool = True) -> TrainResult:
    """Train `model` in place; with `val_split`, keep (and load back) the best validation checkpoint.

    Pairs are (caption, its image): one step sees `batch_size` captions and their images.
    """
    cfg = (config or TrainConfig()).resolved()
    if cfg.sparsity not in PENALTIES:
        raise InvalidInputError(f"Unknown sparsity penalty {cfg.sparsity!r}; choose one of {sorted(PENALTIES)}.")
    if train_split.dense_dim != model.config.dense_dim:
        raise InvalidInputError(f"Training vectors are {train_split.dense_dim}-d but the model expects "
                         f"{model.config.dense_dim}-d; build the model with dense_dim={train_split.dense_dim}.")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = resolve_device(cfg.device)
    joint = None
    if cfg.objective == "joint":
        model.add_dense_head()
        joint = JointObjective(cfg.joint_w_dense, cfg.joint_w_sparse, cfg.joint_self_distill, cfg.joint_teacher,
                               cfg.temperature, cfg.joint_tau).to(device)
    model.to(device).train()

    q_emb = torch.from_numpy(train_split.query_emb)
    d_emb = torch.from_numpy(train_split.doc_emb)
    n = len(train_split.query_ids)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the last incomplete batch
    total = steps_per_epoch * cfg.epochs
    reg_warmup = int(cfg.sparsity_warmup * total)
    lr_warmup = int(cfg.lr_warmup * total)

    groups = [
        {"params": list(model.proj.parameters()), "lr": cfg.lr_proj},
        {"params": list(model.layer_norm.parameters()) + list(model.vocab_projector.parameters()), "lr": cfg.lr},
    ]
    if joint is not None:
        groups.append({"params": list(model.dense_head.parameters()) + list(joint.parameters()), "lr": cfg.lr_head})
    base_lrs = [g["lr"] for g in groups]
    optimizer = adamw(groups, device, cfg.weight_decay)
    average = WeightAverage(model, cfg.weight_average) if cfg.weight_average else None
    result = TrainResult()
    best_state = None
    step = 0
    t_start = time.perf_counter()
    for epoch in range(cfg.epochs):
        p = expansion_control_p(epoch, cfg.epochs, cfg.expansion_decay)
        batches = epoch_batches(train_split.query_doc, cfg.batch_size, rng, cfg.group_by_image)
        sums = {"loss": 0.0, "rank": 0.0, "q_nnz": 0.0, "d_nnz": 0.0, "masked": 0}
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not show_progress,
                   unit="batch")
        t_epoch = time.perf_counter()
        for i in bar:
            rows = batches[i]
            captions = q_emb[rows].to(device)
            # each image once; scores are (images x captions), positives where the caption belongs to the image
            doc = np.unique(train_split.query_doc[rows]) if cfg.group_by_image else train_split.query_doc[rows]
            images = d_emb[doc].to(device)
            masked = bool(rng.random() < p)  # one Bernoulli draw for the whole batch
            for g, base in zip(optimizer.param_groups, base_lrs):
                g["lr"] = base * lr_factor(step, total, lr_warmup, cfg.lr_schedule)

            tokens = pad_token_ids([train_split.query_tokens[r] for r in rows]).to(device) if masked else None
            positives = torch.as_tensor(doc)[:, None] == torch.as_tensor(train_split.query_doc[rows])[None, :]
            out = batch_loss(model, cfg, images, captions, positives.to(device), tokens, joint,
                             sparsity_weight(step, 1.0, reg_warmup))
            if "tau" in out.parts:
                sums["tau"] = sums.get("tau", 0.0) + out.parts["tau"]
            loss, rank_loss = out.loss, out.rank
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update()
            step += 1

            q_nnz, d_nnz = out.caption_nnz, out.image_nnz
            sums["loss"] += loss.item()
            sums["rank"] += rank_loss.item()
            sums["q_nnz"] += q_nnz
            sums["d_nnz"] += d_nnz
            sums["masked"] += int(masked)
            bar.set_postfix(loss=f"{loss.item():.3f}", p=f"{p:.2f}", q_nnz=f"{q_nnz:.0f}", d_nnz=f"{d_nnz:.0f}")
        record = {"epoch": epoch + 1, "p": p, "seconds": time.perf_counter() - t_epoch,
                  **{k: v / steps_per_epoch for k, v in sums.items() if k != "masked"},
                  "masked_batches": sums["masked"]}
        if val_split is not None:
            if average is not None:  # the raw weights too, so that one run compares them with their average
                record["raw"], _ = _validate(model, val_split, cfg.select_max_flops, joint is not None)
            with average.swapped_in() if average is not None else nullcontext():
                metrics, curve = _validate(model, val_split, cfg.select_max_flops, joint is not None)
                record.update(metrics)
                val = record.get("val_at_budget", record["val"])
                score = _selection_score(val, cfg.select_on) if val.get("reached", True) else float("-inf")
                if (score > float("-inf") and score >= result.best_score) or cfg.select_on == "last":
                    result.best_score, result.best_epoch = score, epoch + 1
                    best_state = copy.deepcopy(model.state_dict())
                    result.best_curve = curve
                    if out_dir is not None:
                        model.save_pretrained(out_dir)
            model.train()
        result.history.append(record)
        log.info("epoch %d: %s", epoch + 1, _brief(record))
    if val_split is not None and best_state is None:
        log.warning("no epoch brings %s within %s FLOPs at any static-pruning threshold: keeping the last one; "
                    "retrain with a larger lambda", val_split.name, cfg.select_max_flops)
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        if average is not None:
            model.load_state_dict(average.state)
        if out_dir is not None:
            model.save_pretrained(out_dir)
    result.seconds = time.perf_counter() - t_start
    if out_dir is not None:
        Path(out_dir, "training.json").write_text(json.dumps(
            {"config": asdict(cfg), "best_epoch": result.best_epoch, "history": result.history}, indent=2))
    model.eval()
    return result


def _validate(model: D2SModel, split: PairedSplit, max_flops: float | None,
              dense_head: bool) -> tuple[dict, list[ThresholdPoint] | None]:
    """Dev metrics of the model as it stands (expanded sparse, the dense head's, and at the FLOPs budget),
    and with a budget the static-pruning curve they were read from."""
    record = {"val": evaluate_sparse(model, split, expand_queries=True)}
    if dense_head:
        dense = evaluate_dense_head(model, split)
        record["val_dense_head"] = {"t2i": dense["t2i"], "i2t": dense["i2t"]}
    curve = threshold_curve(model, split) if max_flops is not None else None
    if curve is not None:
        record["val_at_budget"] = _at_budget(curve, max_flops)
    return record, curve


def _at_budget(curve: list[ThresholdPoint], max_flops: float) -> dict:
    """Dev R@1 at the smallest static-pruning threshold within `max_flops` ("reached": False when none is)."""
    threshold = smallest_within(curve, max_flops)
    point = next((p for p in curve if p.min_weight == threshold), None)
    if point is None:
        return {"reached": False, "min_weight": None, "flops": min(p.flops for p in curve)}
    return {"reached": True, "min_weight": point.min_weight, "flops": point.flops,
            "t2i": {"R@1": point.t2i_r1}, "i2t": {"R@1": point.i2t_r1}}


def _selection_score(val: dict, select_on: str) -> float:
    if select_on == "t2i_r1":
        return val["t2i"]["R@1"]
    if select_on in ("mean_r1", "last"):
        return (val["t2i"]["R@1"] + val["i2t"]["R@1"]) / 2
    raise InvalidInputError(f"Unknown selection metric {select_on!r}; use mean_r1, t2i_r1 or last.")


def _brief(record: dict) -> str:
    parts = [f"loss={record['loss']:.3f}", f"p={record['p']:.2f}", f"q_nnz={record['q_nnz']:.1f}",
             f"d_nnz={record['d_nnz']:.1f}", f"{record['seconds']:.0f}s"]
    if "val" in record:
        v = record["val"]
        parts.append(f"val t2i R@1={v['t2i']['R@1']:.1f} i2t R@1={v['i2t']['R@1']:.1f} flops={v['flops']:.2f}")
    if "val_at_budget" in record.get("raw", {}):
        b = record["raw"]["val_at_budget"]
        parts.append(f"raw weights at budget: t2i R@1={b['t2i']['R@1']:.1f} i2t R@1={b['i2t']['R@1']:.1f};"
                     if b["reached"] else "raw weights: budget not reached;")
    if "val_at_budget" in record:
        b = record["val_at_budget"]
        parts.append(f"at budget: min_weight {b['min_weight']} flops={b['flops']:.2f} t2i R@1={b['t2i']['R@1']:.1f} "
                     f"i2t R@1={b['i2t']['R@1']:.1f}" if b["reached"] else f"budget not reached (flops {b['flops']:.2f})")
    return " ".join(parts)
