"""Training levers that use the output's sparsity: log(1 + relu(x)) keeps tens of the 30,522 logits per
vector, and the gradient is zero everywhere else.

- `log_relu_projection`: the vocabulary projection and activation in one autograd function whose backward
  touches only the active logits: the projector's weight gradient and the hidden gradient are sparse x
  dense products over those entries (a dense masked product while the output is still dense, at the
  start of training). Forward is the same dense product as before.
- `sparse_scores`: the (a x b) dot products of two batches of sparse vectors over the union of their
  active columns only (a few thousand of 30,522 once training has made them sparse).

Both compute exactly what the plain operations compute (up to float summation order); tests check the
gradients against the dense path.
"""

from __future__ import annotations

import torch

DENSE_BACKWARD_ABOVE = 0.05  # fraction of active logits above which the dense masked backward is faster


class _LogReluProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        out = hidden @ weight.t()
        out += bias
        active = out > 0
        if active.float().mean() > DENSE_BACKWARD_ABOVE:
            out.clamp_min_(0)
            deriv = torch.where(active, 1.0 / (1.0 + out), torch.zeros_like(out))
            ctx.save_for_backward(hidden, weight, deriv)
            ctx.sparse = False
        else:
            rows, cols = active.nonzero(as_tuple=True)
            ctx.save_for_backward(hidden, weight, rows, cols, 1.0 / (1.0 + out[rows, cols]))
            ctx.sparse = True
            out.clamp_min_(0)
        return out.log1p_()  # in place: one (batch x vocab) buffer for logits and weights

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        if not ctx.sparse:
            hidden, weight, deriv = ctx.saved_tensors
            g = grad_out * deriv
            return g @ weight, g.t() @ hidden, g.sum(dim=0)
        hidden, weight, rows, cols, deriv = ctx.saved_tensors
        values = grad_out[rows, cols] * deriv
        g = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, grad_out.shape, is_coalesced=True,
                                    check_invariants=False)
        grad_hidden = torch.sparse.mm(g, weight) if ctx.needs_input_grad[0] else None
        grad_weight = torch.sparse.mm(g.t(), hidden) if ctx.needs_input_grad[1] else None
        grad_bias = torch.zeros(grad_out.shape[1], dtype=values.dtype, device=values.device).index_add_(0, cols, values) \
            if ctx.needs_input_grad[2] else None
        return grad_hidden, grad_weight, grad_bias


def log_relu_projection(hidden: torch.Tensor, projector: torch.nn.Linear) -> torch.Tensor:
    """log(1 + relu(projector(hidden))), with a sparse backward when gradients are needed and the output
    was sparse on the previous call (while it is dense, at the start of training, autograd's own backward
    is faster)."""
    training = torch.is_grad_enabled() and (hidden.requires_grad or projector.weight.requires_grad)
    if training and getattr(projector, "_lsr_active_fraction", 1.0) <= DENSE_BACKWARD_ABOVE:
        out = _LogReluProjection.apply(hidden, projector.weight, projector.bias)
    else:
        out = torch.log1p(torch.relu(projector(hidden)))
    if training:
        with torch.no_grad():
            projector._lsr_active_fraction = float((out > 0).float().mean())
    return out


def sparse_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a @ b.T` for non-negative sparse weight rows, computed over the columns active in either batch."""
    cols = ((a > 0).any(dim=0) | (b > 0).any(dim=0)).nonzero(as_tuple=True)[0]
    if len(cols) > 0.5 * a.shape[1]:
        return a @ b.t()
    return a.index_select(1, cols) @ b.index_select(1, cols).t()
