"""Filtered against unfiltered query latency at 100k documents, per backend (issue 37).

Documents are label-token vectors as in `benchmarks/bench_search_page.py` (the real encoder's
`features_to_sparse` of peaked class distributions) with generated photo metadata: 40 folders of 25
sub-folders, dates taken over 10 years, 8 camera makes, sizes. Queries are one or two label words; each
is run unfiltered and with three filters (a folder prefix ~2.5%, a one-year date range ~10%, a camera ~12%
combined with a minimum width ~50%), interleaved, after a warm-up of each (the embedded index builds its
filter columns on the first filtered search: timed apart as `first_filter_build_s`).

    python benchmarks/bench_photo_filters.py --docs 100000 --queries 100 --backends embedded,opensearch \
        --out results/photo_filters.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks.bench_search_page import label_token_vectors


def photo_meta(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    makes = ["canon", "nikon", "sony", "fujifilm", "apple", "samsung", "google", "olympus"]
    ids, meta = [], []
    for i in range(n):
        folder = f"f{rng.integers(40):02d}/s{rng.integers(25):02d}"
        ids.append(f"{folder}/img{i:06d}.jpg")
        day = int(rng.integers(3650))
        taken = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_420_070_400 + day * 86400 + int(rng.integers(86400))))
        meta.append({"path": f"/photos/{ids[-1]}", "taken": taken, "camera": [makes[rng.integers(len(makes))]],
                     "width": int(rng.choice([640, 1024, 2048, 4032])), "height": 768, "file_type": "jpeg"})
    return ids, meta


def filters():
    from lsr.backends.filters import Filter, Prefix, Range, Term

    return {"folder": Filter.of(Prefix("id", "f07/")),
            "date_year": Filter.of(Range("taken", gte="2019-01-01T00:00:00", lt="2020-01-01T00:00:00")),
            "camera_and_width": Filter.of(Term("camera", "sony"), Range("width", gte=2048))}


def open_backend(kind: str, vocab_size: int, vocab):
    if kind == "embedded":
        from lsr.backends.embedded import EmbeddedIndex

        return EmbeddedIndex(vocab_size=vocab_size)
    if kind == "opensearch":
        from lsr.backends.opensearch import OpenSearchIndex

        return OpenSearchIndex(os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"),
                               index=f"lsr-bench-filters-{uuid.uuid4().hex[:6]}", vocab=vocab)
    from lsr.backends.elasticsearch import ElasticsearchIndex

    return ElasticsearchIndex(os.environ.get("ELASTICSEARCH_URL", "http://127.0.0.1:9250"),
                              index=f"lsr-bench-filters-{uuid.uuid4().hex[:6]}", vocab=vocab)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--backends", default="embedded")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from lsr.app.open import load_encoder

    sparse = load_encoder("efficientnet-labels")
    label = sparse.encoder
    batches = label_token_vectors(label, args.docs)
    ids, meta = photo_meta(args.docs)
    words = [w for w in ("cat", "dog", "car", "boat", "bird", "tree", "house", "beach", "flower", "bridge", "truck",
                         "pizza", "clock", "shoe", "horse") if sparse.encode_query([w])[0].nnz]
    rng = np.random.default_rng(2)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 3)), replace=False)) for _ in range(args.queries)]
    queries = [sparse.encode_query([t])[0] for t in texts]
    record = {"docs": args.docs, "queries": args.queries, "k": args.k, "load_before": os.getloadavg(), "backends": {}}
    for kind in args.backends.split(","):
        backend = open_backend(kind, sparse.vocab_size, sparse.vocab)
        start = 0
        started = time.perf_counter()
        for batch in batches:
            backend.index(ids[start:start + len(batch)], batch, meta[start:start + len(batch)])
            start += len(batch)
        backend.commit()
        load_s = time.perf_counter() - started
        out = {"load_s": round(load_s, 1)}
        fs = filters()
        backend.search(queries[0], k=args.k)
        t0 = time.perf_counter()
        backend.search(queries[0], k=args.k, filter=fs["folder"])
        out["first_filter_build_s"] = round(time.perf_counter() - t0, 3)
        for f in fs.values():
            backend.search(queries[0], k=args.k, filter=f)
        times: dict[str, list[float]] = {"none": [], **{name: [] for name in fs}}
        hits: dict[str, list[int]] = {name: [] for name in times}
        for q in queries:
            for name in times:
                t0 = time.perf_counter()
                result = backend.search(q, k=args.k, filter=fs.get(name))
                times[name].append((time.perf_counter() - t0) * 1000)
                hits[name].append(len(result))
        out["ms"] = {name: {"p50": round(statistics.median(v), 2), "p99": round(float(np.percentile(v, 99)), 2),
                            "mean_hits": round(float(np.mean(hits[name])), 2)} for name, v in times.items()}
        out["allowed_share"] = {name: round(sum(f.matches(i, m) for i, m in zip(ids, meta)) / len(ids), 4)
                                for name, f in fs.items()}
        record["backends"][kind] = out
        print(kind, json.dumps(out))
        if kind != "embedded":
            backend.drop()
    record["load_after"] = os.getloadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
