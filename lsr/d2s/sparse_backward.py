"""Training on the active columns only: log(1 + relu(x)) keeps tens of the 30,522 logits per vector, and
both the loss and the gradient are zero everywhere else.

`active_projection` runs the vocabulary projection (the one dense product left, batch x hidden x 30,522),
keeps the columns that are positive in at least one row of the batch (a few thousand once training has
made the vectors sparse), and returns them as `ActiveColumns`: a (batch x k) value matrix and the k
sorted vocabulary ids. Everything after it works on that small matrix:

- the sparsity penalties (`values.sum()`, per-column means) are those of the full vectors;
- `active_scores(a, b)` is `a @ b.T` over the columns active in both batches (the others add zero);
- `ActiveColumns.at(ids)` reads the weights at given vocabulary ids (no-expansion captions);
- backward gives the hidden gradient from the k active rows of the projector, and the projector's weight
  and bias gradients on those k rows only (zero elsewhere, exactly as the dense path computes them).

So nothing (batch x 30,522) is kept, read again or written by backward; the results equal the dense path
up to float summation order (tests check values and gradients against it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ActiveColumns:
    """A batch of non-negative sparse vectors kept as its active columns: `values` (batch, k) and the
    sorted vocabulary ids `cols` (k,) they sit at; every other column is zero in every row."""

    values: torch.Tensor
    cols: torch.Tensor
    vocab_size: int

    def to_dense(self) -> torch.Tensor:
        out = self.values.new_zeros(self.values.shape[0], self.vocab_size)
        return out.index_copy(1, self.cols, self.values)

    def at(self, ids: torch.Tensor) -> torch.Tensor:
        """Weights at vocabulary `ids` (any shape, values in [0, vocab)) for every row: (batch, *ids.shape)."""
        position = torch.full((self.vocab_size,), len(self.cols), dtype=torch.long, device=self.cols.device)
        position[self.cols] = torch.arange(len(self.cols), device=self.cols.device)
        padded = torch.cat([self.values, self.values.new_zeros(self.values.shape[0], 1)], dim=1)
        return padded[:, position[ids]]

    def nnz_per_row(self) -> float:
        return float((self.values > 0).sum(dim=1).float().mean())


class _ActiveLogRelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        logits = torch.addmm(bias, hidden, weight.t())
        cols = (logits > 0).any(dim=0).nonzero(as_tuple=True)[0]
        # every column active (the start of training): keep the logits themselves, no copy
        values = (logits if len(cols) == logits.shape[1] else logits.index_select(1, cols)).clamp_min_(0)
        del logits
        deriv = torch.where(values > 0, 1.0 / (1.0 + values), torch.zeros_like(values))
        ctx.save_for_backward(hidden, weight, cols, deriv)
        ctx.mark_non_differentiable(cols)
        return values.log1p_(), cols

    @staticmethod
    def backward(ctx, grad_values: torch.Tensor, _grad_cols):
        hidden, weight, cols, deriv = ctx.saved_tensors
        g = grad_values * deriv  # (batch, k)
        grad_hidden = g @ weight.index_select(0, cols) if ctx.needs_input_grad[0] else None
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_weight = weight.new_zeros(weight.shape).index_copy_(0, cols, g.t() @ hidden)
        if ctx.needs_input_grad[2]:
            grad_bias = weight.new_zeros(weight.shape[0]).index_copy_(0, cols, g.sum(dim=0))
        return grad_hidden, grad_weight, grad_bias


def active_projection(hidden: torch.Tensor, projector: torch.nn.Linear) -> ActiveColumns:
    """log(1 + relu(projector(hidden))) as `ActiveColumns` (differentiable in hidden and the projector)."""
    values, cols = _ActiveLogRelu.apply(hidden, projector.weight, projector.bias)
    return ActiveColumns(values, cols, projector.out_features)


def active_scores(a: ActiveColumns, b: ActiveColumns) -> torch.Tensor:
    """(a rows x b rows) dot products, over the columns active in both batches."""
    in_b = torch.isin(a.cols, b.cols)
    in_a = torch.isin(b.cols, a.cols)  # both sorted, so the two selections line up column for column
    return a.values[:, in_b] @ b.values[:, in_a].t()


def column_means(ids: torch.Tensor, values: torch.Tensor, rows: int, vocab_size: int) -> torch.Tensor:
    """Mean weight of each vocabulary column over `rows` vectors given as (ids, values) entries (same shape;
    ids may repeat): what the FLOPs penalty squares."""
    sums = values.new_zeros(vocab_size).index_add_(0, ids.reshape(-1), values.reshape(-1))
    return sums / rows
