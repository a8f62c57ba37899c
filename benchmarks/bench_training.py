"""Training throughput of D2S on this CPU: seconds per 100k pairs, measured side by side in one run.

Rows: expanded and no-expansion batches, with the plain dense backward (`plain`) and with the sparse levers
of `lsr.d2s.sparse_backward` (`levers`: backward over active logits only, scores over active columns),
at two output densities: the start of training (a fresh model, about half the logits active) and a
trained model's (the projector bias shifted so that about `--active` logits per vector stay active, as
after the first epoch of the default run). `--bf16` adds bf16 autocast rows (emulated on AVX2-only CPUs).

    python benchmarks/bench_training.py --steps 6 --batch-size 512
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lsr.d2s.losses import distillation_loss, l1_penalty
from lsr.d2s.model import D2SConfig, D2SModel, pad_token_ids
from lsr.d2s.train import caption_scores_no_expansion


def plain_forward(model, dense):
    return torch.log1p(torch.relu(model.logits(dense)))


def _step(model, opt, captions, images, tokens, masked: bool, levers: bool, bf16: bool) -> float:
    from lsr.d2s.sparse_backward import sparse_scores

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        forward = model if levers else (lambda x: plain_forward(model, x))
        image_sparse = forward(images)
        if masked:
            scores, caption_sparse = caption_scores_no_expansion(model, captions, tokens, image_sparse)
        else:
            caption_sparse = forward(captions)
            scores = sparse_scores(image_sparse, caption_sparse) if levers else image_sparse @ caption_sparse.t()
        loss = distillation_loss(scores, images @ captions.t(), 0.01)
        loss = loss + 1e-2 * (l1_penalty(caption_sparse) + l1_penalty(image_sparse)) / 2
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float((image_sparse > 0).sum(dim=1).float().mean())


def make_model(dense_dim: int, active: int | None, calibrate: torch.Tensor) -> D2SModel:
    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=dense_dim, hidden_dim=384))
    if active is not None:  # shift the bias so that about `active` logits per vector are positive
        with torch.no_grad():
            logits = model.logits(calibrate)
            cut = torch.quantile(logits.flatten()[:: max(1, logits.numel() // 1_000_000)], 1 - active / logits.shape[1])
            model.vocab_projector.bias -= cut
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--dense-dim", type=int, default=384)
    parser.add_argument("--active", type=int, default=60, help="active logits per vector of the trained density")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (slow where emulated)")
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    b = args.batch_size
    captions = torch.nn.functional.normalize(torch.randn(b, args.dense_dim), dim=1)
    images = torch.nn.functional.normalize(captions + 0.5 * torch.randn(b, args.dense_dim), dim=1)
    tokens = pad_token_ids([rng.integers(1000, 30522, size=12) for _ in range(b)])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {b}, steps {args.steps}")
    results = {}
    for density, active in (("start", None), ("trained", args.active)):
        for bf16 in (False, True) if args.bf16 else (False,):
            for masked in (False, True):
                for levers in (False, True):
                    model = make_model(args.dense_dim, active, images)
                    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
                    _step(model, opt, captions, images, tokens, masked, levers, bf16)  # warm-up
                    t0 = time.perf_counter()
                    for _ in range(args.steps):
                        nnz = _step(model, opt, captions, images, tokens, masked, levers, bf16)
                    per_step = (time.perf_counter() - t0) / args.steps
                    key = (density, "bf16" if bf16 else "fp32", "no-expansion" if masked else "expanded",
                           "levers" if levers else "plain")
                    results[key] = per_step
                    print(f"{' '.join(key):<40} {per_step:6.3f} s/step  {1e5 / b * per_step:6.0f} s per 100k pairs  "
                          f"(image nnz/row {nnz:.0f})")
    for density in ("start", "trained"):
        for kind in ("expanded", "no-expansion"):
            ratio = results[(density, "fp32", kind, "plain")] / results[(density, "fp32", kind, "levers")]
            print(f"speed-up of the levers, {density} density, {kind}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
