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
first epoch). Each row also prints how many columns its batch's images are active on together: the width of
every active-column product, which sets the cost more than the terms per vector do. At the default 60 these
random vectors are active on about 5,200 of the 30,522 columns; the trained default model's real batches
(512 random train pairs, about 157 terms per image vector) on about 14,700 (`--model` below). Expanded and
no-expansion (own-token captions) batches are timed apart; an epoch mixes them by the Bernoulli schedule
(all no-expansion at the start, all expanded at the end).

With `--model DIR` (a model saved by `lsr train`) the batches are real, from the Flickr30k caption-proxy train
split (512 random pairs; 128 whole images for the grouped rows), and the trained density is that model's own
weights in every row at its width. The narrower rows (`hid 192`, `hid 128`) keep the bias-shift stand-in at
the model's terms per vector, whose vectors spread over about half as many columns as the real model's.

    python benchmarks/bench_training.py --steps 4
    python benchmarks/bench_training.py --steps 4 --model runs/f30k-joint16-sd2-flops/model
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import numpy as np
import torch

from lsr.d2s.joint import JointObjective
from lsr.d2s.model import D2SConfig, D2SModel, pad_token_ids
from lsr.d2s.sparse_backward import ActiveColumns
from lsr.d2s.train import TrainConfig, batch_loss

EPOCH_PAIRS = 116_000


class Lever(NamedTuple):
    """One row of the table: the training step with these settings."""

    name: str
    model: type = D2SModel  # DenseStandIn: the step before the active-column lever
    grouped: bool = False  # batches of whole images (--group-by-image)
    fused: bool = False  # AdamW's fused kernel
    threads: int | None = None  # None: torch's default
    hidden: int = 384
    compiled: bool = False  # the joint objective under torch.compile


class DenseStandIn(D2SModel):
    """The model with its `active` replaced by the full vectors through plain autograd (every column kept)."""

    def active(self, dense: torch.Tensor) -> ActiveColumns:
        weights = torch.log1p(torch.relu(self.logits(dense)))
        return ActiveColumns(weights, torch.arange(weights.shape[1]), weights.shape[1])


class Batch(NamedTuple):
    images: torch.Tensor  # one row per image of the batch
    captions: torch.Tensor
    tokens: torch.Tensor  # the captions' padded token ids (no-expansion batches)
    positives: torch.Tensor  # (images x captions) matching pairs


def synthetic_batches(b: int, k: int, dim: int) -> tuple[Batch, Batch]:
    """(random pairs, whole images) from random vectors: captions, their images near them, random tokens."""
    rng = np.random.default_rng(0)
    captions = torch.nn.functional.normalize(torch.randn(b, dim), dim=1)
    images = torch.nn.functional.normalize(captions + 0.5 * torch.randn(b, dim), dim=1)
    tokens = pad_token_ids([rng.integers(1000, 30522, size=12) for _ in range(b)])
    pairs = Batch(images, captions, tokens, torch.eye(b, dtype=torch.bool))
    grouped = Batch(images[::k], captions, tokens, torch.arange(b // k)[:, None] == (torch.arange(b) // k)[None, :])
    return pairs, grouped


def real_batches(b: int, k: int) -> tuple[Batch, Batch]:
    """(random pairs, whole images) drawn (seeded) from the Flickr30k caption-proxy train split."""
    from lsr.data.caption_proxy import load_split

    split = load_split("f30k", "train", show_progress=False)
    rng = np.random.default_rng(0)

    def batch(rows: np.ndarray, image_rows: np.ndarray) -> Batch:
        owner = split.query_doc[rows]
        return Batch(torch.from_numpy(split.doc_emb[image_rows]), torch.from_numpy(split.query_emb[rows]),
                     pad_token_ids([split.query_tokens[r] for r in rows]),
                     torch.from_numpy(image_rows[:, None] == owner[None, :]))

    rows = rng.choice(len(split.query_ids), b, replace=False)
    chosen = rng.choice(len(split.doc_ids), b // k, replace=False)
    grouped_rows = np.concatenate([np.flatnonzero(split.query_doc == i)[:k] for i in chosen])
    return batch(rows, split.query_doc[rows]), batch(grouped_rows, chosen)


def make_model(cls, dense_dim: int, active: int | None, calibrate: torch.Tensor, hidden: int = 384,
               trained: D2SModel | None = None) -> D2SModel:
    """A fresh model (the start density), `trained`'s weights where the width matches, or a fresh model whose
    projector bias is shifted so that about `active` logits per vector are positive (the trained density)."""
    torch.manual_seed(0)
    model = cls(D2SConfig(dense_dim=dense_dim, hidden_dim=hidden, dense_head=True))
    if active is not None and trained is not None and trained.config.hidden_dim == hidden:
        model.load_state_dict(trained.state_dict())
    elif active is not None:  # shift the bias so that about `active` logits per vector are positive
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
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="a model saved by lsr train: its weights give the trained density, on real Flickr30k "
                             "caption-proxy train batches (the other widths: its terms per vector)")
    args = parser.parse_args()
    torch.manual_seed(0)
    b, k = args.batch_size, args.captions_per_image
    cfg = TrainConfig(objective=args.objective).resolved()
    trained, active = None, args.active
    if args.model:
        trained = D2SModel.from_pretrained(args.model)
        trained.add_dense_head()  # a D2S model has none; the joint objective trains one from the identity
        pairs_batch, grouped_batch = real_batches(b, k)
        with torch.no_grad():
            active = round(float((trained.logits(pairs_batch.images) > 0).sum(dim=1).float().mean()))
        print(f"trained density: {args.model} on real train batches ({active} terms per image vector)")
    else:
        pairs_batch, grouped_batch = synthetic_batches(b, k, args.dense_dim)
    steps_per_epoch = EPOCH_PAIRS // b
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, threads {threads}, batch {b}, objective {args.objective}, "
          f"{args.steps} timed steps per row, epoch = {steps_per_epoch} steps")
    levers = [Lever("dense", DenseStandIn), Lever("active"), Lever("+grouped", grouped=True),
              Lever("+fused", grouped=True, fused=True), Lever("1 thread", grouped=True, fused=True, threads=1),
              Lever("pairs", fused=True)]
    if args.objective == "joint":
        levers.append(Lever("+compile", fused=True, compiled=True))
    levers += [Lever("hid 192", fused=True, hidden=192), Lever("hid 128", fused=True, hidden=128)]
    results = {}
    for density, density_active in (("start", None), ("trained", active)):
        for masked in (False, True):
            for lever in levers:
                torch.set_num_threads(lever.threads or threads)
                images, captions, tokens, positives = grouped_batch if lever.grouped else pairs_batch
                model = make_model(lever.model, args.dense_dim, density_active, pairs_batch.images, lever.hidden,
                                   trained)
                joint = JointObjective() if args.objective == "joint" else None
                params = list(model.parameters()) + (list(joint.parameters()) if joint else [])
                opt = torch.optim.AdamW(params, lr=1e-5, fused=lever.fused)
                objective = torch.compile(joint) if lever.compiled else joint

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
                with torch.no_grad():  # the width of the image side's active-column matrix
                    cols = int((model.logits(images) > 0).any(dim=0).sum())
                kind = "no-expansion" if masked else "expanded"
                results[(density, kind, lever.name)] = per_step
                print(f"{density:<8} {kind:<13} {lever.name:<9} {per_step:6.3f} s/step  "
                      f"{per_step * steps_per_epoch:6.0f} s/epoch  (image nnz/row {nnz:.0f}, active columns {cols})")
    torch.set_num_threads(threads)
    for hidden in (384, 128):
        floor = projection_floor(args.batch_size, args.steps, hidden)
        print(f"floor: the step's two dense vocabulary projections alone (images and captions, {b} x {hidden} x "
              f"30,522 each, forward only) {floor:.3f} s/step {floor * steps_per_epoch:6.0f} s/epoch")
    for density in ("start", "trained"):
        for kind in ("expanded", "no-expansion"):
            base = results[(density, kind, "dense")]
            row = ", ".join(f"{lv.name} {base / results[(density, kind, lv.name)]:.2f}x" for lv in levers[1:])
            print(f"speed-up over dense, {density} density, {kind}: {row}")
            pairs = results[(density, kind, "pairs")]
            print(f"  hidden width against the default step (pairs, 384), {density} density, {kind}: "
                  f"192 {pairs / results[(density, kind, 'hid 192')]:.2f}x, 128 {pairs / results[(density, kind, 'hid 128')]:.2f}x")
            if (density, kind, "+compile") in results:
                print(f"  torch.compile of the joint objective against the default step, {density} density, {kind}: "
                      f"{pairs / results[(density, kind, '+compile')]:.2f}x")


if __name__ == "__main__":
    main()
