"""Incremental indexing into OpenSearch: the cost of one small `index()` batch, before and after the
backend contract, side by side on one node.

"settings + refresh per call" is what `index()` did before: each call read and rewrote the index
settings (the bulk-load toggles, as `OpenSearchIndex.loading()` still does once per load) and
refreshed. "contract" is `index()` now: the documents only, one refresh at `commit()`.

    lsr opensearch start
    python benchmarks/bench_incremental.py --batches 50 --batch-size 1 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import numpy as np

from lsr.backends.opensearch import OpenSearchIndex
from lsr.sparse import SparseVector
from lsr.vocab import Vocabulary


def run(url: str, vocab: Vocabulary, vectors: list[SparseVector], batch_size: int, old_way: bool) -> float:
    """Seconds per batch to index `vectors` in batches of `batch_size`, including the final commit."""
    index = OpenSearchIndex(url, index=f"bench-incremental-{uuid.uuid4().hex[:8]}", vocab=vocab)
    index.create()
    try:
        t0 = time.perf_counter()
        for lo in range(0, len(vectors), batch_size):
            ids = [f"d{i}" for i in range(lo, min(lo + batch_size, len(vectors)))]
            if old_way:
                with index.loading():
                    index.index(ids, vectors[lo:lo + batch_size])
                index.refresh()
            else:
                index.index(ids, vectors[lo:lo + batch_size])
        index.commit()
        seconds = time.perf_counter() - t0
        if index.count() != len(vectors):
            raise RuntimeError(f"count {index.count()} != {len(vectors)}")
        return seconds / -(-len(vectors) // batch_size)
    finally:
        index.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--nnz", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = [SparseVector(rng.choice(30522, args.nnz, replace=False), rng.gamma(2, 0.5, args.nnz) + 0.01)
               for _ in range(args.batches * args.batch_size)]
    vocab = Vocabulary()
    times: dict[str, list[float]] = {"settings + refresh per call (before)": [], "contract (after)": []}
    for _ in range(args.repeats):  # alternate, so drift on the node hits both alike
        times["settings + refresh per call (before)"].append(run(args.url, vocab, vectors, args.batch_size, True))
        times["contract (after)"].append(run(args.url, vocab, vectors, args.batch_size, False))
    print(f"{args.batches} batches of {args.batch_size} documents ({args.nnz} tokens each), {args.repeats} repeats")
    for name, t in times.items():
        print(f"  {name:40s} {np.median(t) * 1e3:8.1f} ms/batch (median; runs: "
              + ", ".join(f"{x * 1e3:.1f}" for x in t) + ")")
    before, after = (np.median(t) for t in times.values())
    print(f"  speed-up: {before / after:.1f}x")


if __name__ == "__main__":
    main()
