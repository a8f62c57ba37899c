"""Benchmark the embedded sparse index against exact dense search on synthetic proxy-like corpora.

Documents have ~35 non-zeros drawn from a Zipf-like distribution over the 30522-term vocabulary;
queries have ~35 (expanded) or ~7 (no-expansion) non-zeros from the same distribution. Dense
search is a numpy matmul over a normalised float32 (docs, dim) matrix plus argpartition top-10.

    python benchmarks/bench_embedded.py --docs 100000 1000000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from lsr.backends.embedded import EmbeddedIndex
from lsr.sparse import VOCAB_SIZE, SparseBatch


def zipf_cdf(vocab_size: int, exponent: float, offset: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative term probabilities p(rank) ~ 1/(rank+offset)^exponent, and a random rank->term map."""
    p = 1.0 / (np.arange(vocab_size) + offset) ** exponent
    return np.cumsum(p / p.sum()), rng.permutation(vocab_size).astype(np.int32)


def sparse_rows(
    n: int, nnz: int, cdf: np.ndarray, terms: np.ndarray, rng: np.random.Generator, chunk: int = 50_000
) -> SparseBatch:
    """n rows of up to `nnz` distinct Zipf-distributed terms with log-normal positive weights."""
    parts = []
    draws = int(nnz * 1.6) + 4  # oversample; duplicates of head terms are dropped
    for lo in range(0, n, chunk):
        m = min(chunk, n - lo)
        cand = terms[np.minimum(np.searchsorted(cdf, rng.random((m, draws))), cdf.size - 1)]
        cand.sort(axis=1)
        first = np.ones(cand.shape, dtype=bool)
        first[:, 1:] = cand[:, 1:] != cand[:, :-1]
        keep = first & (np.cumsum(first, axis=1) <= nnz)
        counts = keep.sum(axis=1)
        indptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        cols = cand[keep]
        data = rng.lognormal(0.0, 0.6, size=cols.size).astype(np.float32)
        parts.append(sp.csr_matrix((data, cols, indptr), shape=(m, VOCAB_SIZE)))
    return SparseBatch(sp.vstack(parts, format="csr") if len(parts) > 1 else parts[0])


def dense_matrix(n: int, dim: int, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - lo), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[lo : lo + block.shape[0]] = block
    return out


def percentiles_ms(times: list[float]) -> tuple[float, float]:
    t = np.asarray(times) * 1e3
    return float(np.percentile(t, 50)), float(np.percentile(t, 99))


def time_sparse(index: EmbeddedIndex, queries: SparseBatch, k: int, warmup: int = 5) -> tuple[float, float]:
    for q in list(queries)[:warmup]:
        index.search(q, k=k)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, k=k)
        times.append(time.perf_counter() - t0)
    return percentiles_ms(times)


def time_dense(matrix: np.ndarray, queries: np.ndarray, k: int, warmup: int = 5) -> tuple[float, float]:
    def one(q: np.ndarray) -> np.ndarray:
        scores = matrix @ q
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top], kind="stable")]

    for q in queries[:warmup]:
        one(q)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        one(q)
        times.append(time.perf_counter() - t0)
    return percentiles_ms(times)


def run(n_docs: int, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    cdf, terms = zipf_cdf(VOCAB_SIZE, args.zipf, args.zipf_offset, rng)
    t0 = time.perf_counter()
    docs = sparse_rows(n_docs, args.doc_nnz, cdf, terms, rng)
    q_exp = sparse_rows(args.queries, args.query_nnz, cdf, terms, rng)
    q_noexp = sparse_rows(args.queries, args.noexp_nnz, cdf, terms, rng)
    gen_s = time.perf_counter() - t0
    ids = [f"doc-{i}" for i in range(n_docs)]

    index = EmbeddedIndex()
    t0 = time.perf_counter()
    for lo in range(0, n_docs, args.batch):
        hi = min(n_docs, lo + args.batch)
        index.index(ids[lo:hi], docs.rows(slice(lo, hi)))
    index.compact()  # folds pending chunks into the postings
    build_s = time.perf_counter() - t0
    del docs

    mem = index.memory_bytes()
    dense_bytes = n_docs * args.dense_dim * 4
    df = np.diff(index._offsets)
    print(f"== {n_docs:,} docs (generated in {gen_s:.1f}s)")
    print(f"  postings: {int(df.sum()):,} ({df.sum() / n_docs:.1f}/doc), largest posting list {int(df.max()):,}")
    print(f"  build: {build_s:.2f}s = {n_docs / build_s:,.0f} docs/s")
    print(
        f"  memory: sparse index {mem / 2**20:.1f} MiB vs dense float32 {args.dense_dim}-d "
        f"{dense_bytes / 2**20:.1f} MiB (ratio sparse/dense {mem / dense_bytes:.2f})"
    )

    results = {}
    for name, queries in (("expanded", q_exp), ("no-expansion", q_noexp)):
        mean_nnz = queries.csr.nnz / len(queries)
        touched = float(np.mean([df[q.ids].sum() for q in queries]))
        p50, p99 = time_sparse(index, queries, args.k)
        results[name] = (p50, p99)
        print(
            f"  sparse {name:<12} (q nnz {mean_nnz:.1f}, postings/query {touched:,.0f}): "
            f"top-{args.k} p50 {p50:.3f} ms, p99 {p99:.3f} ms"
        )
        t0 = time.perf_counter()
        index.search_batch(queries, k=args.k)
        print(f"    search_batch: {(time.perf_counter() - t0) / len(queries) * 1e3:.3f} ms/query")

    matrix = dense_matrix(n_docs, args.dense_dim, rng)
    dq = dense_matrix(args.queries, args.dense_dim, rng)
    d50, d99 = time_dense(matrix, dq, args.k)
    print(f"  dense exact {args.dense_dim}-d matmul: top-{args.k} p50 {d50:.3f} ms, p99 {d99:.3f} ms")
    for name, (p50, p99) in results.items():
        print(f"  ratio sparse {name}/dense: p50 {p50 / d50:.2f}x, p99 {p99 / d99:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000], help="corpus sizes to run")
    parser.add_argument("--queries", type=int, default=300, help="queries per latency measurement")
    parser.add_argument("--doc-nnz", type=int, default=35)
    parser.add_argument("--query-nnz", type=int, default=35, help="expanded query non-zeros")
    parser.add_argument("--noexp-nnz", type=int, default=7, help="no-expansion query non-zeros")
    parser.add_argument("--dense-dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10_000, help="documents per index() call")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of term frequencies")
    parser.add_argument("--zipf-offset", type=float, default=10.0, help="rank offset flattening the head")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for n in args.docs:
        run(n, args)


if __name__ == "__main__":
    main()
