"""Sustained query load: open-loop arrivals at a fixed rate, several threads, against one of three targets.

Queries (Flickr30k test captions, words in -> hits out) are released every 1/rate seconds for `--seconds`,
whatever the earlier ones are doing, into a pool of `--threads` workers; a query's latency runs from its
scheduled release to its hits, so queueing counts. Targets: `embedded` (`lsr.Searcher` over the
embedded index, in process), `opensearch` (the same searcher over an OpenSearch index opened with
`lsr.open_index`, through the Python client; the documents are bulk-loaded first), `http` (the search
page's `/v1/search` of `lsr serve`, under uvicorn on loopback, one shared HTTP client). Prints the
achieved rate, p50 / p99 / max latency and the error count (target: zero errors, p99 beside p50).

    python benchmarks/bench_load.py --model runs/if-joint/model --rate 50 --seconds 60 --threads 4 --target http
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
    parser.add_argument("--target", choices=("embedded", "opensearch", "http"), default="embedded")
    parser.add_argument("--url", default="http://127.0.0.1:9200", help="OpenSearch, for --target opensearch")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import lsr
    from lsr.app.specs import IndexSpec
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.data.sources import load_split_spec

    encoder = lsr.load_encoder(args.model)  # D2S or inference-free, with the dense encoder it records
    split = load_split_spec(args.split, encoder.vocab)
    docs = encoder.encode_dense(split.doc_emb)
    if args.target == "opensearch":  # replaced on every run; the documents bulk-loaded and committed
        index = lsr.open_index(IndexSpec.from_parts("opensearch", "lsr-bench-load", args.url), overwrite=True,
                               vocab=encoder.vocab, new=lsr.NewIndex(encoder.vocab_size))
    else:  # in memory: an index address is a directory, and this one is thrown away
        index = EmbeddedIndex(vocab_size=len(encoder.vocab))
    index.index(split.doc_ids, docs)
    index.commit()
    searcher = lsr.Searcher(index, encoder)
    search = searcher_call(searcher) if args.target != "http" else http_call(searcher)
    search(split.query_texts[0])  # warm-up: loads the query encoder
    n = int(args.rate * args.seconds)
    start = time.perf_counter() + 0.5
    latencies = np.zeros(n)
    errors: list[str] = []

    def run(i: int) -> None:
        release = start + i / args.rate
        try:
            found = search(split.query_texts[i % len(split.query_texts)])
            if found != 10:
                errors.append(f"query {i}: {found} hits")
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
    print(f"{args.target} load: {type(encoder).__name__} ({args.model}), {args.threads} threads, offered {args.rate:g} q/s "
          f"for {args.seconds:g} s")
    print(f"  achieved {n / wall:.1f} q/s over {wall:.1f} s; latency p50 {np.percentile(ms, 50):.2f} ms  "
          f"p99 {np.percentile(ms, 99):.2f} ms  max {ms.max():.2f} ms; errors {len(errors)}")
    for line in errors[:5]:
        print("  ", line)
    return 1 if errors else 0


def searcher_call(searcher):
    """The number of hits of one query through the searcher (embedded or OpenSearch backend)."""
    return lambda text: len(searcher.search(text, k=10, explain=False))


def http_call(searcher):
    """The number of hits of one query through the search page's /v1/search, served by uvicorn on loopback."""
    import socket
    import threading

    import httpx
    import uvicorn

    from lsr.serve import SearchService, create_search_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_search_app(SearchService(searcher)), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          limits=httpx.Limits(max_connections=64))

    def call(text: str) -> int:
        reply = client.get("/v1/search", params={"q": text[:256], "k": 10})
        reply.raise_for_status()
        return len(reply.json()["hits"])

    return call


if __name__ == "__main__":
    raise SystemExit(main())
