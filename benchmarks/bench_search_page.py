"""Search-page latency at 100k documents: the page's own JSON call (/v1/search, over HTTP on loopback) and
the same search in process, on an embedded index of label-token image vectors.

The 100k documents are what the offline EfficientNet label-token encoder makes of class probabilities:
peaked Dirichlet draws over its 1,000 ImageNet classes go through its own `features_to_sparse`, so the
vectors have the real encoder's tokens and sparsity (no 100k-image folder exists here). Queries are one
or two words of ImageNet class names that have a token, seeded. Prints p50 / p99 / max per mode, and the cached-thumbnail
reply time, with the document count and the vectors' non-zeros.

    python benchmarks/bench_search_page.py --docs 100000 --queries 300 --out results/bench_search_page.txt
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def label_token_vectors(encoder, n: int, seed: int = 0, chunk: int = 10_000):
    """`n` label-token document vectors from peaked class distributions (see the module docstring)."""
    rng = np.random.default_rng(seed)
    batches = []
    for start in range(0, n, chunk):
        probs = rng.dirichlet(np.full(encoder.dim, 0.02), size=min(chunk, n - start)).astype(np.float32)
        batches.append(encoder.features_to_sparse(probs))
    return batches


def percentiles(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"p50 {np.percentile(a, 50):7.2f} ms  p99 {np.percentile(a, 99):7.2f} ms  max {a.max():7.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=24, help="hits per page (the page's default)")
    parser.add_argument("--out", default=None, help="also write the report here")
    args = parser.parse_args()

    import httpx
    import uvicorn
    from PIL import Image

    import lsr
    from lsr.backends.embedded import EmbeddedIndex
    from lsr.serve import ImageFiles, SearchService, create_search_app

    encoder = lsr.load_encoder(lsr.EncoderSpec(image_encoder="efficientnet-labels", device="cpu"))
    labels = encoder.encoder  # the EfficientNet label encoder itself: its classes make the documents
    work = Path(tempfile.mkdtemp(prefix="lsr-bench-page-"))
    root = work / "photos"
    root.mkdir()
    Image.new("RGB", (640, 480), (90, 140, 200)).save(root / "real.jpg")  # the one file on disk: thumbnails

    started = time.perf_counter()
    index = EmbeddedIndex(vocab_size=len(encoder.vocab))  # in memory: drawn vectors, nothing to keep
    nnz, done = [], 0
    for batch in label_token_vectors(labels, args.docs):
        ids = [f"img{done + i:06d}.jpg" for i in range(len(batch))]
        meta = [{"path": str(root / i), "file_size": 100_000 + n, "width": 640, "height": 480}
                for n, i in enumerate(ids)]
        index.index(ids, batch, metadata=meta)
        nnz.extend(batch.nnz_per_row().tolist())
        done += len(batch)
    build_s = time.perf_counter() - started
    searcher = lsr.Searcher(index, encoder)
    service = SearchService(searcher, ImageFiles([root], work / "thumbs"))

    rng = np.random.default_rng(1)
    names = [n.replace("_", " ").lower() for n in labels.class_names]
    queries = []
    while len(queries) < args.queries:  # words the encoder splits into several pieces match nothing: skipped
        words = names[rng.integers(len(names))].replace(",", " ").split()
        text = " ".join(words[:rng.integers(1, 3)])
        if labels.encode_query(text).nnz:
            queries.append(text)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_search_app(service, service.files), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    lines = [f"documents: {index.count():,} of {args.docs:,} drawn label-token vectors (a draw whose classes have "
             f"no whole-word token is refused as empty; non-zeros per document: mean "
             f"{statistics.mean(nnz):.1f}, max {max(nnz)}), built in {build_s:.1f} s; {len(queries)} queries of 1-2 "
             f"class-name words with at least one token, k={args.k}; one client, sequential, loopback"]
    with httpx.Client(base_url=base, timeout=30) as http:
        for q in queries[:20]:  # warm-up
            http.get("/v1/search", params={"q": q, "k": args.k})
        for mode in ("expanded", "no-expansion"):
            over_http, in_process, hits = [], [], []
            for q in queries:
                t0 = time.perf_counter()
                reply = http.get("/v1/search", params={"q": q, "k": args.k, "mode": mode})
                over_http.append((time.perf_counter() - t0) * 1000)
                reply.raise_for_status()
                hits.append(len(reply.json()["hits"]))
                t0 = time.perf_counter()
                service.search(q, args.k, mode)
                in_process.append((time.perf_counter() - t0) * 1000)
            lines.append(f"/v1/search {mode:12s} over HTTP   {percentiles(over_http)}  (mean hits {np.mean(hits):.1f})")
            lines.append(f"/v1/search {mode:12s} in process  {percentiles(in_process)}")
        http.get("/thumb/0/real.jpg").raise_for_status()  # made once
        thumbs = []
        for _ in range(100):
            t0 = time.perf_counter()
            http.get("/thumb/0/real.jpg").raise_for_status()
            thumbs.append((time.perf_counter() - t0) * 1000)
        lines.append(f"/thumb (cached JPEG)            {percentiles(thumbs)}")
    server.should_exit = True
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
