"""Sustained query load on the embedded backend: open-loop arrivals at a fixed rate, several threads.

Queries (Flickr30k test captions, words in -> hits out through `SparseSearcher`) are released every
1/rate seconds for `--seconds`, whatever the earlier ones are doing, into a pool of `--threads`
workers; a query's latency runs from its scheduled release to its hits, so queueing counts. Prints the
achieved rate, p50 / p99 / max latency and the error count (target: zero errors, p99 beside p50).

    python benchmarks/bench_load.py --model runs/if-joint/model --rate 50 --seconds 60 --threads 4
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory (D2S or inference-free)")
    parser.add_argument("--split", default="proxy:f30k/test")
    parser.add_argument("--rate", type=float, default=50.0, help="queries per second offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from lsr.backends.embedded import EmbeddedIndex
    from lsr.data.sources import load_split_spec
    from lsr.encoders.sparse import D2SEncoder
    from lsr.search import SparseSearcher

    encoder = D2SEncoder.from_pretrained(args.model)
    split = load_split_spec(args.split, encoder.vocab)
    index = EmbeddedIndex(vocab_size=len(encoder.vocab))
    index.index(split.doc_ids, encoder.encode_dense(split.doc_emb))
    searcher = SparseSearcher(index, encoder)
    searcher.search(split.query_texts[0], k=10)  # warm-up: loads the query encoder
    n = int(args.rate * args.seconds)
    start = time.perf_counter() + 0.5
    latencies = np.zeros(n)
    errors: list[str] = []

    def run(i: int) -> None:
        release = start + i / args.rate
        try:
            hits = searcher.search(split.query_texts[i % len(split.query_texts)], k=10, explain=False)
            if len(hits) != 10:
                errors.append(f"query {i}: {len(hits)} hits")
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            errors.append(f"query {i}: {exc!r}")
        latencies[i] = time.perf_counter() - release

    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for i in range(n):
            delay = start + i / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(run, i)
    wall = time.perf_counter() - start
    ms = 1000 * latencies
    print(f"embedded load: {type(encoder).__name__} ({args.model}), {args.threads} threads, offered {args.rate:g} q/s "
          f"for {args.seconds:g} s")
    print(f"  achieved {n / wall:.1f} q/s over {wall:.1f} s; latency p50 {np.percentile(ms, 50):.2f} ms  "
          f"p99 {np.percentile(ms, 99):.2f} ms  max {ms.max():.2f} ms; errors {len(errors)}")
    for line in errors[:5]:
        print("  ", line)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
