"""Training throughput of D2S on this CPU: seconds per 100k pairs, expanded vs no-expansion batches,
fp32 vs bf16 autocast, measured side by side in one run.

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


def _step(model, opt, captions, images, tokens, masked: bool, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        image_sparse = model(images)
        if masked:
            scores, caption_sparse = caption_scores_no_expansion(model, captions, tokens, image_sparse)
        else:
            caption_sparse = model(captions)
            scores = image_sparse @ caption_sparse.t()
        loss = distillation_loss(scores, images @ captions.t(), 0.01)
        loss = loss + 1e-2 * (l1_penalty(caption_sparse) + l1_penalty(image_sparse)) / 2
    opt.zero_grad()
    loss.backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--dense-dim", type=int, default=384)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    b = args.batch_size
    captions = torch.nn.functional.normalize(torch.randn(b, args.dense_dim), dim=1)
    images = torch.nn.functional.normalize(torch.randn(b, args.dense_dim), dim=1)
    tokens = pad_token_ids([rng.integers(1000, 30522, size=12) for _ in range(b)])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {b}, steps {args.steps}")
    results = {}
    for bf16 in (False, True):
        for masked in (False, True):
            model = D2SModel(D2SConfig(dense_dim=args.dense_dim, hidden_dim=384))
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            _step(model, opt, captions, images, tokens, masked, bf16)  # warm-up
            t0 = time.perf_counter()
            for _ in range(args.steps):
                _step(model, opt, captions, images, tokens, masked, bf16)
            per_step = (time.perf_counter() - t0) / args.steps
            key = f"{'bf16' if bf16 else 'fp32'} {'no-expansion' if masked else 'expanded'}"
            results[key] = per_step
            print(f"{key:<24} {per_step:6.3f} s/step  {b / per_step:7.0f} pairs/s  "
                  f"{1e5 / b * per_step:6.0f} s per 100k pairs")
    for kind in ("expanded", "no-expansion"):
        print(f"bf16/fp32 time ratio ({kind}): {results['bf16 ' + kind] / results['fp32 ' + kind]:.2f}")
    print(f"no-expansion/expanded time ratio (fp32): {results['fp32 no-expansion'] / results['fp32 expanded']:.2f}")
    print("reference (issue): about 270 s per 100k pairs, fp32, 2 cores")


if __name__ == "__main__":
    main()
