"""Elasticsearch beside OpenSearch and the embedded index, side by side in one run.

Per corpus size: bulk docs/s into an Elasticsearch ``sparse_vector`` index and an OpenSearch
``rank_features`` index (each through its backend's streaming bulk), index size on disk after a
force-merge, and client-side single-query top-10 latency p50/p99 with overlap@10 against the exact
embedded index for: the embedded index, Elasticsearch exact (``prune: false``) and pruned (``prune: true``,
its default pruning config and a looser one), OpenSearch exact (``neural_sparse``) and two-phase.

The corpus: with ``--model DIR``, the D2S caption-proxy workload of `bench_embedded.py` (real Flickr30k
vectors and noisy copies, real caption queries); without, a synthetic one (Zipf-distributed WordPiece ids,
about 80 tokens a document and 25 a query, gamma weights) that needs no model.

    lsr opensearch start; lsr elasticsearch start
    python benchmarks/bench_elasticsearch.py --docs 100000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embedded import index_chunks, load_proxy, proxy_workload, timed  # noqa: E402
from bench_opensearch import agreement, bulk_load, store_mb  # noqa: E402

from lsr.backends.bulk import BulkSettings  # noqa: E402
from lsr.backends.elasticsearch import ElasticsearchIndex  # noqa: E402
from lsr.backends.embedded import EmbeddedIndex  # noqa: E402
from lsr.backends.opensearch import OpenSearchIndex  # noqa: E402
from lsr.sparse import SparseVector  # noqa: E402
from lsr.vocab import VOCAB_SIZE, Vocabulary  # noqa: E402

LOOSE_PRUNING = {"tokens_freq_ratio_threshold": 10, "tokens_weight_threshold": 0.2}


def synthetic(n_docs: int, n_queries: int, seed: int, chunk: int = 20_000) -> tuple[list[sp.csr_matrix], list]:
    """CSR chunks of `n_docs` documents and `n_queries` query vectors over Zipf-distributed token ids."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, VOCAB_SIZE - 999, dtype=np.float64)
    p = 1.0 / ranks ** 0.9
    p /= p.sum()
    perm = rng.permutation(len(ranks)) + 999  # skip [unused] / special ids

    def rows(n: int, mean: int) -> sp.csr_matrix:
        sizes = np.maximum(3, rng.poisson(mean, n))
        draws = perm[rng.choice(len(ranks), size=int(sizes.sum()), p=p)]  # all rows' tokens in one draw
        row = np.repeat(np.arange(n), sizes)
        weights = rng.gamma(1.5, 0.6, draws.size).astype(np.float32) + 0.01
        m = sp.csr_matrix((weights, (row, draws)), shape=(n, VOCAB_SIZE))  # repeated tokens add up
        m.sum_duplicates()
        return m

    chunks = [rows(min(chunk, n_docs - lo), 80) for lo in range(0, n_docs, chunk)]
    q = rows(n_queries, 25)
    queries = [SparseVector(q.indices[q.indptr[i]:q.indptr[i + 1]], q.data[q.indptr[i]:q.indptr[i + 1]])
               for i in range(n_queries)]
    return chunks, queries


def load(index, chunks, ids, n: int, label: str) -> tuple[float, float]:
    """Bulk-load, force-merge to one segment; (docs/s, MB on disk)."""
    index.create(overwrite=True)
    bulk_s, refresh_s = bulk_load(index, chunks, ids, n)
    index.client.options(request_timeout=3600).indices.forcemerge(index=index.index_name, max_num_segments=1) \
        if isinstance(index, ElasticsearchIndex) else \
        index.client.indices.forcemerge(index=index.index_name, max_num_segments=1, request_timeout=3600)
    mb = store_mb(index)
    print(f"  {label}: bulk {bulk_s:.1f}s = {n / bulk_s:,.0f} docs/s; refresh {refresh_s:.1f}s; store {mb:.0f} MB",
          flush=True)
    return n / bulk_s, mb


def run(n_docs: int, args: argparse.Namespace, vocab: Vocabulary) -> None:
    if args.model:
        work = proxy_workload(n_docs, args.src, args)
        chunks, queries = list(work.chunks), [q for q in work.q_exp if q.nnz]
        print(work.header, flush=True)
    else:
        chunks, queries = synthetic(n_docs, args.queries, args.seed)
        print(f"== {n_docs:,} synthetic documents (Zipf ids, ~80 tokens), {len(queries)} queries (~25 tokens)")
    ids = [f"doc-{i}" for i in range(n_docs)]
    settings = BulkSettings(chunk_size=args.chunk_size)
    es = ElasticsearchIndex(args.es_url, index=f"bench-es-{n_docs}", vocab=vocab, bulk=settings)
    os_index = OpenSearchIndex(args.os_url, index=f"bench-os-{n_docs}", vocab=vocab, bulk=settings)
    es_rate, es_mb = load(es, chunks, ids, n_docs, "elasticsearch sparse_vector")
    os_rate, os_mb = load(os_index, chunks, ids, n_docs, "opensearch rank_features")
    embedded = EmbeddedIndex()
    index_chunks(embedded, ids, list(chunks), 10_000)
    embedded.compact()

    truth = [embedded.search(q, k=args.k) for q in queries]
    runs = [("embedded (in-process)", lambda q: embedded.search(q, k=args.k)),
            ("elasticsearch exact (prune false)", lambda q: es.search(q, k=args.k)),
            ("elasticsearch pruned (default config)", lambda q: es.search(q, k=args.k, mode="pruned")),
            ("elasticsearch pruned (freq 10, weight 0.2)",
             lambda q: es.search(q, k=args.k, mode="pruned", method_parameters=LOOSE_PRUNING)),
            ("opensearch exact (neural_sparse)", lambda q: os_index.search(q, k=args.k)),
            ("opensearch two_phase (pipeline default)", lambda q: os_index.search(q, k=args.k, mode="two_phase"))]
    print(f"  {'engine':<46}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}{'same top10':>12}")
    for label, fn in runs:
        hits = [fn(q) for q in queries]
        p50, p99 = timed(fn, queries)
        overlap, same = agreement(hits, truth)
        print(f"  {label:<46}{p50:>9.2f}{p99:>9.2f}{overlap:>11.3f}{same:>12.2f}", flush=True)
    print(f"  bulk docs/s: elasticsearch {es_rate:,.0f} (one request at a time) vs opensearch {os_rate:,.0f} "
          f"({settings.threads} in flight); on disk: elasticsearch {es_mb:.0f} MB vs opensearch {os_mb:.0f} MB")
    print(f"  load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.keep:
        es.drop()
        os_index.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model", default=None, metavar="DIR", help="a D2S model: the caption-proxy workload")
    parser.add_argument("--es-url", default=os.environ.get("ELASTICSEARCH_URL", "http://127.0.0.1:9250"))
    parser.add_argument("--os-url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--chunk-size", type=int, default=1000, help="documents per _bulk request")
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--drop", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark indexes")
    args = parser.parse_args()
    if args.model:
        args.src = load_proxy(args.model, args.queries, args.seed)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; Elasticsearch {args.es_url}, "
          f"OpenSearch {args.os_url}")
    for n in args.docs:
        run(n, args, Vocabulary())


if __name__ == "__main__":
    main()
