"""Bulk indexing into OpenSearch: 1 and 2 requests in flight, translog fsync per request or async,
side by side on the same vectors.

Synthetic sparse vectors (uniform token ids, `--nnz` tokens, gamma weights) are indexed into a fresh
``rank_features`` index per run; each variant runs `--repeats` times, alternating.

    lsr opensearch start
    python benchmarks/bench_bulk.py --docs 30000 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from lsr.backends.opensearch import OpenSearchIndex
from lsr.sparse import SparseVector
from lsr.vocab import Vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=30_000)
    parser.add_argument("--nnz", type=int, default=70)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--translog", nargs="+", choices=("request", "async"), default=["request", "async"],
                        help="translog durability during the load")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = [SparseVector(rng.choice(30522, args.nnz, replace=False), rng.gamma(2, 0.5, args.nnz) + 0.01)
               for _ in range(args.docs)]
    vocab = Vocabulary()
    variants = [(t, d) for t in args.threads for d in args.translog]
    rates: dict[tuple[int, str], list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for threads, durability in variants:
            index = OpenSearchIndex(args.url, index="bench-bulk", vocab=vocab)
            index.bulk_settings.chunk_size, index.bulk_settings.threads = args.chunk_size, threads
            index.bulk_settings.async_translog = durability == "async"
            index.create(overwrite=True)
            t0 = time.perf_counter()
            report = index.bulk(((f"d{i}", v, None) for i, v in enumerate(vectors)), progress=False)
            seconds = time.perf_counter() - t0
            index.refresh()
            if report.indexed != args.docs or index.count() != args.docs:
                raise RuntimeError(f"indexed {report.indexed}, count {index.count()} of {args.docs}")
            rates[(threads, durability)].append(args.docs / seconds)
            print(f"threads {threads}, translog {durability}: {args.docs / seconds:,.0f} docs/s", flush=True)
            index.drop()
    for (threads, durability), r in rates.items():
        print(f"threads {threads}, translog {durability}: mean {np.mean(r):,.0f} docs/s over {len(r)} runs "
              f"(target 3,000: {'MET' if np.mean(r) >= 3000 else 'NOT MET'})")


if __name__ == "__main__":
    main()
