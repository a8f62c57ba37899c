"""Joint sparse + dense training with self-distillation (after Song et al., "Sparse and Dense Retrievers
Learn Better Together", CIKM 2025), as an objective beside D2S distillation (`TrainConfig.objective`).

A trainable dense head (the model's `dense_head`: d x d, identity at the start) sits on the frozen vectors
and feeds both a dense score and the sparse head:

    s_dense = cos(head(image), head(caption)) / tau        (tau learnable, clamped to [0.001, 0.5])
    s_sparse = sparse(image) . sparse(caption)              (expanded, or the caption's own tokens)
    s_inter = w_dense * s_dense + w_sparse * s_sparse
    loss = InfoNCE(s_dense) + InfoNCE(s_sparse) + InfoNCE(s_inter)                 (both directions)
         + self_distill * [CE(softmax(s_inter), s_dense) + CE(softmax(s_inter), s_sparse)]
         + teacher * D2S distillation of s_sparse from the frozen model's scores    (optional)

InfoNCE counts every caption of the same image in the batch as a positive. The sparsity penalty and the
Bernoulli expansion control stay those of the training loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lsr.d2s.losses import distillation_loss, soft_cross_entropy


def info_nce(scores: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Contrastive loss of (images x captions) scores, both directions; `positives` marks matching pairs."""
    target = positives.float()
    rows = target / target.sum(dim=1, keepdim=True)
    cols = target.t() / target.t().sum(dim=1, keepdim=True)
    return (soft_cross_entropy(scores.float(), rows) + soft_cross_entropy(scores.float().t(), cols)) / 2


def self_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Soft-label cross-entropy from softmax(teacher) (detached) to `student`, both directions."""
    with torch.no_grad():
        rows, cols = torch.softmax(teacher.float(), dim=1), torch.softmax(teacher.float().t(), dim=1)
    return (soft_cross_entropy(student.float(), rows) + soft_cross_entropy(student.float().t(), cols)) / 2


class JointObjective(nn.Module):
    """The loss above; its one parameter is the dense temperature (trained with the model)."""

    def __init__(self, w_dense: float = 1.0, w_sparse: float = 1.0, self_distill: float = 1.0,
                 teacher: float = 0.0, teacher_temperature: float = 0.01, tau: float = 0.07,
                 tau_range: tuple[float, float] = (0.001, 0.5)):
        super().__init__()
        self.w_dense, self.w_sparse, self.self_distill = w_dense, w_sparse, self_distill
        self.teacher, self.teacher_temperature = teacher, teacher_temperature
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau)))
        self.tau_range = tau_range

    @property
    def tau(self) -> torch.Tensor:
        return self.log_tau.exp().clamp(*self.tau_range)

    def forward(self, model, images: torch.Tensor, captions: torch.Tensor, sparse_scores: torch.Tensor,
                positives: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss, its parts) for one batch: `images`, `captions` the frozen vectors, `sparse_scores` the
        (images x captions) sparse dot products, `positives` which pairs match."""
        dense_i = F.normalize(model.dense(images), dim=1)
        dense_c = F.normalize(model.dense(captions), dim=1)
        s_dense = dense_i @ dense_c.t() / self.tau
        s_inter = self.w_dense * s_dense + self.w_sparse * sparse_scores
        nce = info_nce(s_dense, positives) + info_nce(sparse_scores, positives) + info_nce(s_inter, positives)
        sd = self_distillation(s_dense, s_inter) + self_distillation(sparse_scores, s_inter)
        loss = nce + self.self_distill * sd
        parts = {"nce": nce.item(), "self_distill": sd.item(), "tau": self.tau.item()}
        if self.teacher:
            kd = distillation_loss(sparse_scores, images @ captions.t(), self.teacher_temperature)
            loss = loss + self.teacher * kd
            parts["teacher"] = kd.item()
        return loss, parts
