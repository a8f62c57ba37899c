"""Training throughput on this CPU: seconds per step and per epoch (116,000 Flickr30k train pairs, batch
512: 226 steps), each speed lever added one at a time and measured side by side in one run.

Every row runs the training step of `lsr.d2s.train.batch_loss` (the default joint objective, or D2S with
`--objective d2s`) plus backward and the optimiser step, on synthetic vectors:

- `dense`:   the step before the levers: full (batch x 30,522) weights through autograd, dense scores
             and penalties (the model's `active` swapped for a dense stand-in with every column "active");
- `active`:  the batch's active columns only (`lsr.d2s.sparse_backward`): nothing (batch x 30,522) kept
             for backward, scores over the columns active in both batches, gradients on active rows only;
- `+grouped`: batches of whole images (`--group-by-image`): 128 images x 4 captions, so each image is
             projected once per batch instead of four times;
- `+fused`:  AdamW's fused CPU kernel (one pass over each parameter instead of several);
- `1 thread`: the last row with one thread instead of two;
- `pairs`:   what `lsr train` runs by default: active columns, fused AdamW, random pairs (not grouped);
- `+compile`: `pairs` with the joint objective under `torch.compile` (inductor fuses the element-wise passes
             over the (batch x batch) score matrices; the vocabulary products stay the same kernels, and the
             active-column projection, whose width depends on the data, stays eager);
- `hid 192`, `hid 128`: `pairs` with a narrower hidden layer (`lsr train --hidden-dim`), so every
             vocabulary product (the forward projection, both backward products) shrinks with it;
- `floor`:   the step's two dense vocabulary projections alone (forward only), which every random-pairs
             step computes whatever the levers: a lower bound on the seconds per step.

Two output densities: the start of training (a fresh model, about half the logits active) and a trained
model's (the projector bias shifted so that about `--active` logits per vector stay active, as after the
first epoch). Expanded and no-expansion (own-token captions) batches are timed apart; an epoch mixes them
by the Bernoulli schedule (all no-expansion at the start, all expanded at the end).

    python benchmarks/bench_training.py --steps 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lsr.d2s.joint import JointObjective
from lsr.d2s.model import D2SConfig, D2SModel, pad_token_ids
from lsr.d2s.sparse_backward import ActiveColumns
from lsr.d2s.train import TrainConfig, batch_loss

EPOCH_PAIRS = 116_000


class DenseStandIn(D2SModel):
    """The model with its `active` replaced by the full vectors through plain autograd (every column kept)."""

    def active(self, dense: torch.Tensor) -> ActiveColumns:
        weights = torch.log1p(torch.relu(self.logits(dense)))
        return ActiveColumns(weights, torch.arange(weights.shape[1]), weights.shape[1])


def make_model(cls, dense_dim: int, active: int | None, calibrate: torch.Tensor, hidden: int = 384) -> D2SModel:
    torch.manual_seed(0)
    model = cls(D2SConfig(dense_dim=dense_dim, hidden_dim=hidden, dense_head=True))
    if active is not None:  # shift the bias so that about `active` logits per vector are positive
        with torch.no_grad():
            logits = model.logits(calibrate)
            cut = torch.quantile(logits.flatten()[:: max(1, logits.numel() // 1_000_000)], 1 - active / logits.shape[1])
            model.vocab_projector.bias -= cut
    return model


def projection_floor(batch_size: int, steps: int, hidden: int = 384, vocab: int = 30_522) -> float:
    """Seconds per step of the one product no lever removes with random pairs: every row of the batch (its
    images and its captions) times the whole projector, to find which logits are positive."""
    torch.manual_seed(0)
    weight, bias = torch.randn(vocab, hidden), torch.randn(vocab)
    rows = torch.randn(batch_size, hidden)
    for _ in range(2):
        torch.addmm(bias, rows, weight.t())  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        for _side in ("images", "captions"):
            torch.addmm(bias, rows, weight.t())
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--captions-per-image", type=int, default=4)
    parser.add_argument("--dense-dim", type=int, default=384)
    parser.add_argument("--active", type=int, default=60, help="active logits per vector of the trained density")
    parser.add_argument("--objective", choices=("joint", "d2s"), default="joint")
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    b, k = args.batch_size, args.captions_per_image
    cfg = TrainConfig(objective=args.objective).resolved()
    captions = torch.nn.functional.normalize(torch.randn(b, args.dense_dim), dim=1)
    pair_images = torch.nn.functional.normalize(captions + 0.5 * torch.randn(b, args.dense_dim), dim=1)
    tokens = pad_token_ids([rng.integers(1000, 30522, size=12) for _ in range(b)])
    steps_per_epoch = EPOCH_PAIRS // b
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {threads}, batch {b}, objective {args.objective}, "
          f"{args.steps} timed steps per row, epoch = {steps_per_epoch} steps")
    # (name, model class, grouped, fused AdamW, threads, hidden width, compiled objective)
    levers = [("dense", DenseStandIn, False, False, threads, 384, False),
              ("active", D2SModel, False, False, threads, 384, False),
              ("+grouped", D2SModel, True, False, threads, 384, False),
              ("+fused", D2SModel, True, True, threads, 384, False), ("1 thread", D2SModel, True, True, 1, 384, False),
              ("pairs", D2SModel, False, True, threads, 384, False)]
    if args.objective == "joint":
        levers.append(("+compile", D2SModel, False, True, threads, 384, True))
    levers += [("hid 192", D2SModel, False, True, threads, 192, False),
               ("hid 128", D2SModel, False, True, threads, 128, False)]
    results = {}
    for density, active in (("start", None), ("trained", args.active)):
        for masked in (False, True):
            for name, cls, grouped, fused, n_threads, hidden, compiled in levers:
                torch.set_num_threads(n_threads)
                images = pair_images[::k] if grouped else pair_images
                image_of = torch.arange(b) // k if grouped else torch.arange(b)
                positives = torch.arange(len(images))[:, None] == image_of[None, :]
                model = make_model(cls, args.dense_dim, active, pair_images, hidden)
                joint = JointObjective() if args.objective == "joint" else None
                params = list(model.parameters()) + (list(joint.parameters()) if joint else [])
                opt = torch.optim.AdamW(params, lr=1e-5, fused=fused)
                objective = torch.compile(joint) if compiled else joint

                def step() -> float:
                    out = batch_loss(model, cfg, images, captions, positives, tokens if masked else None, objective)
                    opt.zero_grad(set_to_none=True)
                    out.loss.backward()
                    opt.step()
                    return out.image_nnz

                step()  # warm-up (and, for `+compile`, the compilation)
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    nnz = step()
                per_step = (time.perf_counter() - t0) / args.steps
                kind = "no-expansion" if masked else "expanded"
                results[(density, kind, name)] = per_step
                print(f"{density:<8} {kind:<13} {name:<9} {per_step:6.3f} s/step  {per_step * steps_per_epoch:6.0f} s/epoch"
                      f"  (image nnz/row {nnz:.0f})")
    torch.set_num_threads(threads)
    for hidden in (384, 128):
        floor = projection_floor(args.batch_size, args.steps, hidden)
        print(f"floor: the step's two dense vocabulary projections alone (images and captions, {b} x {hidden} x "
              f"30,522 each, forward only) {floor:.3f} s/step {floor * steps_per_epoch:6.0f} s/epoch")
    for density in ("start", "trained"):
        for kind in ("expanded", "no-expansion"):
            base = results[(density, kind, "dense")]
            row = ", ".join(f"{name} {base / results[(density, kind, name)]:.2f}x" for name, *_ in levers[1:])
            print(f"speed-up over dense, {density} density, {kind}: {row}")
            pairs = results[(density, kind, "pairs")]
            print(f"  hidden width against the default step (pairs, 384), {density} density, {kind}: "
                  f"192 {pairs / results[(density, kind, 'hid 192')]:.2f}x, 128 {pairs / results[(density, kind, 'hid 128')]:.2f}x")
            if (density, kind, "+compile") in results:
                print(f"  torch.compile of the joint objective against the default step, {density} density, {kind}: "
                      f"{pairs / results[(density, kind, '+compile')]:.2f}x")


if __name__ == "__main__":
    main()
