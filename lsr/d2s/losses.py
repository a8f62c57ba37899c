"""Distillation and sparsity losses for D2S training."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_j targets_ij * log_softmax(logits)_ij."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def distillation_loss(sparse_scores_i2t: torch.Tensor, dense_scores_i2t: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Soft-label cross-entropy to softmax(dense / tau) of the frozen teacher, both directions, averaged.

    Both score matrices are (images x captions) over the batch.
    """
    with torch.no_grad():
        teacher = dense_scores_i2t.float() / temperature
        p_i2t = torch.softmax(teacher, dim=1)
        p_t2i = torch.softmax(teacher.t(), dim=1)
    s = sparse_scores_i2t.float()
    return (soft_cross_entropy(s, p_i2t) + soft_cross_entropy(s.t(), p_t2i)) / 2


def l1_penalty(weights: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the L1 norm of each sparse vector. D2S weights are log(1 + relu(.)) >= 0, so
    the norm is the plain sum (no abs pass forward, no sign pass backward)."""
    return weights.float().sum(dim=1).mean()


def flops_penalty(weights: torch.Tensor) -> torch.Tensor:
    """FLOPs regulariser (Paria et al., 2020): sum over terms of the squared mean activation."""
    return (weights.float().abs().mean(dim=0) ** 2).sum()


PENALTIES = {"l1": l1_penalty, "flops": flops_penalty}
