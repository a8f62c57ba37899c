"""Cross-space retrieval on the Flickr30k caption proxy: MiniLM queries mapped into a GloVe document space.

After Choi et al. (ECIR 2023), "Procrustes mapping between two embedding spaces". Queries are MiniLM
embeddings of captions 1-4; documents are the GloVe 6B 50d mean of each image's caption 0. Maps
(least squares, orthogonal Procrustes after PCA, contrastive linear, contrastive gated MLP) are fitted
on training pairs and evaluated on the test split in both directions. The paper's headline (77% R@10)
is on its own data; these are caption-proxy numbers.

    python benchmarks/procrustes_proxy.py --train-split train --json results/procrustes_f30k.json
    python benchmarks/procrustes_proxy.py --train-split dev --train-docs 1000   # quick, without the train cache
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lsr.dense.evaluate import METHODS, format_table, run_procrustes_eval


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="f30k", choices=["f30k", "coco"])
    ap.add_argument("--train-split", default="train", help="split the maps are fitted on (train or dev)")
    ap.add_argument("--test-split", default="test")
    ap.add_argument("--train-docs", type=int, default=None, help="use only the first N training documents")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=512, help="gated-MLP hidden width")
    ap.add_argument("--temperature", type=float, default=0.05, help="initial InfoNCE temperature (learnable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="torch device for the contrastive maps (default: cuda if any)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--save-dir", type=Path, default=None, help="save each fitted map under this folder")
    ap.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)

    if args.train_split == args.test_split:
        ap.error("--train-split and --test-split must differ.")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from lsr.data.caption_proxy import load_split
    from lsr.encoders.glove import GloVeEncoder

    t0 = time.perf_counter()
    train = load_split(args.dataset, args.train_split, show_progress=args.progress)
    if args.train_docs:
        train = train.subset(args.train_docs)
    test = load_split(args.dataset, args.test_split, show_progress=args.progress)
    glove = GloVeEncoder()
    result = run_procrustes_eval(train, test, glove, methods=args.methods, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                                 temperature=args.temperature, seed=args.seed, device=args.device,
                                 save_dir=args.save_dir, show_progress=args.progress)
    result["wall_s"] = time.perf_counter() - t0
    print(format_table(result))
    print(f"total {result['wall_s']:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
