"""Benchmark the embedded sparse index against exact dense search.

Synthetic mode (default): documents have ~35 non-zeros drawn from a Zipf-like distribution over
the 30522-term vocabulary; queries have ~35 (expanded) or ~7 (no-expansion) non-zeros from the same
distribution. Dense search is a numpy matmul over a normalised float32 (docs, dim) matrix plus
argpartition top-10.

Model mode (`--model DIR`, a trained D2S model directory): documents are real D2S caption-proxy
vectors, the Flickr30k train+test caption-0 document embeddings (30k) encoded by the model, scaled
to `--docs N` by repeating them with noise (`noisy_sparse_copies`); queries are the D2S vectors of
real Flickr30k test captions, expanded (`model.encode(query_emb)`) and no-expansion
(`model.encode(query_emb, query_tokens)`). Dense search runs over the MiniLM document vectors
repeated with the same kind of noise, queried with the test captions' MiniLM vectors.

    python benchmarks/bench_embedded.py --docs 100000 1000000
    python benchmarks/bench_embedded.py --model runs/f30k-full/model --docs 100000 1000000

Targets (issue, at 1M docs): single-query top-10 p50 at least 5x faster than exact dense, index
memory at most 1/4 of the float32 dense matrix, build at least 100,000 docs/s.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable

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


def timed(fn, items: list, warmup: int = 5) -> tuple[float, float]:
    """p50 and p99 milliseconds of `fn(item)` over `items`, after `warmup` untimed calls."""
    for x in items[:warmup]:
        fn(x)
    times = []
    for x in items:
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return percentiles_ms(times)


def time_sparse(index: EmbeddedIndex, queries: SparseBatch, k: int, warmup: int = 5) -> tuple[float, float]:
    return timed(lambda q: index.search(q, k=k), list(queries), warmup)


def time_dense(matrix: np.ndarray, queries: np.ndarray, k: int, warmup: int = 5) -> tuple[float, float]:
    def one(q: np.ndarray) -> np.ndarray:
        scores = matrix @ q
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top], kind="stable")]

    return timed(one, list(queries), warmup)


# ------------------------------------------------------------------------------ model mode

PROXY_BASE = "Flickr30k train+test caption-0 documents"


@dataclass
class ProxySource:
    """Real D2S caption-proxy vectors: the base documents and the sampled test-caption queries."""

    docs: sp.csr_matrix  # (30k, vocab) D2S document vectors
    doc_emb: np.ndarray  # (30k, 384) MiniLM document vectors they were encoded from
    q_exp: SparseBatch  # expanded D2S queries
    q_noexp: SparseBatch  # no-expansion D2S queries (each caption's own WordPiece ids only)
    q_dense: np.ndarray  # the queries' MiniLM vectors
    model_dir: str
    encode_s: float


def load_proxy(model_dir: str, n_queries: int, seed: int) -> ProxySource:
    """Encode the f30k train+test caption-0 documents and `n_queries` random test captions with a D2S model."""
    from lsr.d2s.model import D2SModel
    from lsr.data.caption_proxy import load_split

    model = D2SModel.from_pretrained(model_dir)
    train, test = load_split("f30k", "train"), load_split("f30k", "test")
    doc_emb = np.concatenate([train.doc_emb, test.doc_emb]).astype(np.float32)
    rng = np.random.default_rng(seed)
    sel = np.sort(rng.choice(len(test.query_emb), size=min(n_queries, len(test.query_emb)), replace=False))
    q_dense = np.ascontiguousarray(test.query_emb[sel], dtype=np.float32)
    t0 = time.perf_counter()
    docs = model.encode(doc_emb).csr
    q_exp = model.encode(q_dense)
    q_noexp = model.encode(q_dense, [test.query_tokens[i] for i in sel])
    return ProxySource(docs, doc_emb, q_exp, q_noexp, q_dense, str(model_dir), time.perf_counter() - t0)


def noisy_sparse_copies(
    base: sp.csr_matrix, n: int, rng: np.random.Generator, noise: float = 0.1, drop: float = 0.1
) -> list[sp.csr_matrix]:
    """n rows, as one CSR block per copy: the base rows, then repeated copies whose weights are multiplied
    by (1 + noise * N(0, 1)) (factor clipped to >= 0.01, so weights stay > 0) and whose entries are each
    dropped with probability `drop`."""
    m = base.shape[0]
    parts = []
    for copy, lo in enumerate(range(0, n, m)):
        block = base[: min(m, n - lo)]
        if copy == 0:
            parts.append(block.copy())
            continue
        factor = np.maximum(1.0 + noise * rng.standard_normal(block.nnz), 0.01)
        keep = rng.random(block.nnz) >= drop
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        indptr = np.zeros(block.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=block.shape[0]), out=indptr[1:])
        data = (block.data[keep] * factor[keep]).astype(np.float32)
        parts.append(sp.csr_matrix((data, block.indices[keep], indptr), shape=block.shape))
    return parts


def noisy_dense_copies(
    base: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.1
) -> np.ndarray:
    """n rows: the base rows, then repeated copies multiplied element-wise by (1 + noise * N(0, 1)), re-normalised."""
    m, dim = base.shape
    out = np.empty((n, dim), dtype=np.float32)
    for copy, lo in enumerate(range(0, n, m)):
        block = base[: min(m, n - lo)]
        if copy:
            block = block * (1.0 + noise * rng.standard_normal(block.shape, dtype=np.float32))
            block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        out[lo : lo + block.shape[0]] = block
    return out


# ------------------------------------------------------------------------------ the run


@dataclass
class Workload:
    chunks: list[sp.csr_matrix]  # the documents, in row order (consumed by indexing, to bound peak memory)
    q_exp: SparseBatch
    q_noexp: SparseBatch
    dense: Callable[[], tuple[np.ndarray, np.ndarray]]  # built after the sparse part, to bound peak memory
    header: str
    gen_s: float


def synthetic_workload(n_docs: int, args: argparse.Namespace) -> Workload:
    rng = np.random.default_rng(args.seed)
    cdf, terms = zipf_cdf(VOCAB_SIZE, args.zipf, args.zipf_offset, rng)
    t0 = time.perf_counter()
    docs = sparse_rows(n_docs, args.doc_nnz, cdf, terms, rng)
    q_exp = sparse_rows(args.queries, args.query_nnz, cdf, terms, rng)
    q_noexp = sparse_rows(args.queries, args.noexp_nnz, cdf, terms, rng)
    gen_s = time.perf_counter() - t0

    def dense() -> tuple[np.ndarray, np.ndarray]:
        return dense_matrix(n_docs, args.dense_dim, rng), dense_matrix(args.queries, args.dense_dim, rng)

    header = f"== {n_docs:,} synthetic docs (generated in {gen_s:.1f}s)"
    return Workload([docs.csr], q_exp, q_noexp, dense, header, gen_s)


def proxy_workload(n_docs: int, src: ProxySource, args: argparse.Namespace) -> Workload:
    rng = np.random.default_rng(args.seed + n_docs)
    t0 = time.perf_counter()
    docs = noisy_sparse_copies(src.docs, n_docs, rng, args.noise, args.drop)
    gen_s = time.perf_counter() - t0
    m = src.docs.shape[0]

    def dense() -> tuple[np.ndarray, np.ndarray]:
        return noisy_dense_copies(src.doc_emb, n_docs, rng, args.noise), src.q_dense

    header = (
        f"== {n_docs:,} D2S caption-proxy docs from {src.model_dir} (scaled in {gen_s:.1f}s)\n"
        f"  corpus: the {m:,} real D2S vectors of the {PROXY_BASE}, then {max(0, n_docs - m):,} noisy copies "
        f"(weights x (1 + {args.noise:g}*N(0,1)), factor clipped to >= 0.01 so weights stay > 0, "
        f"each entry dropped with p={args.drop:g})\n"
        f"  dense side: the MiniLM {src.doc_emb.shape[1]}-d document vectors repeated the same way "
        f"(x (1 + {args.noise:g}*N(0,1)) per entry, re-normalised, nothing dropped)\n"
        f"  queries: {len(src.q_exp)} random Flickr30k test captions (D2S expanded / no-expansion; MiniLM for dense)"
    )
    return Workload(docs, src.q_exp, src.q_noexp, dense, header, gen_s)


def index_chunks(index: EmbeddedIndex, ids: list[str], chunks: list[sp.csr_matrix], batch: int) -> None:
    """Index the chunks' rows under `ids` in calls of at most `batch` rows, emptying the chunk list."""
    row = 0
    while chunks:
        chunk = chunks.pop(0)
        for lo in range(0, chunk.shape[0], batch):
            part = SparseBatch(chunk[lo : lo + batch])
            index.index(ids[row : row + len(part)], part)
            row += len(part)
        del chunk


def run(n_docs: int, args: argparse.Namespace, src: ProxySource | None = None) -> dict:
    work = synthetic_workload(n_docs, args) if src is None else proxy_workload(n_docs, src, args)
    nnz = np.concatenate([np.diff(c.indptr) for c in work.chunks])
    ids = [f"doc-{i}" for i in range(n_docs)]

    index = EmbeddedIndex()
    t0 = time.perf_counter()
    index_chunks(index, ids, work.chunks, args.batch)
    index.compact()  # folds pending chunks into the postings
    build_s = time.perf_counter() - t0

    mem = index.memory_bytes()
    postings_bytes = index._offsets.nbytes + index._docs.nbytes + index._vals.nbytes
    dense_dim = args.dense_dim if src is None else src.doc_emb.shape[1]
    dense_bytes = n_docs * dense_dim * 4
    df = np.diff(index._offsets)
    print(work.header)
    print(
        f"  postings: {int(df.sum()):,} ({df.sum() / n_docs:.1f}/doc; doc nnz p50 {np.percentile(nnz, 50):.0f}, "
        f"p99 {np.percentile(nnz, 99):.0f}, max {nnz.max()}), largest posting list {int(df.max()):,}"
    )
    print(f"  build: {build_s:.2f}s = {n_docs / build_s:,.0f} docs/s")
    print(
        f"  memory: sparse index {mem / 2**20:.1f} MiB (postings {postings_bytes / 2**20:.1f} MiB, "
        f"ids/tombstones {(mem - postings_bytes) / 2**20:.1f} MiB) vs dense float32 {dense_dim}-d "
        f"{dense_bytes / 2**20:.1f} MiB (ratio sparse/dense {mem / dense_bytes:.2f})"
    )

    results = {}
    for name, queries in (("expanded", work.q_exp), ("no-expansion", work.q_noexp)):
        mean_nnz = queries.csr.nnz / len(queries)
        empty = int(np.sum(queries.nnz_per_row() == 0))
        touched = float(np.mean([df[q.ids].sum() for q in queries]))
        p50, p99 = time_sparse(index, queries, args.k)
        results[name] = (p50, p99)
        print(
            f"  sparse {name:<12} (q nnz {mean_nnz:.1f}, postings/query {touched:,.0f}"
            f"{f', {empty} empty queries' if empty else ''}): top-{args.k} p50 {p50:.3f} ms, p99 {p99:.3f} ms"
        )
        t0 = time.perf_counter()
        index.search_batch(queries, k=args.k)
        print(f"    search_batch: {(time.perf_counter() - t0) / len(queries) * 1e3:.3f} ms/query")
    del index

    matrix, dq = work.dense()
    d50, d99 = time_dense(matrix, dq, args.k)
    del matrix
    print(f"  dense exact {dense_dim}-d matmul: top-{args.k} p50 {d50:.3f} ms, p99 {d99:.3f} ms")
    for name, (p50, p99) in results.items():
        print(
            f"  ratio sparse {name}/dense: p50 {p50 / d50:.2f}x, p99 {p99 / d99:.2f}x "
            f"(sparse p50 is {d50 / p50:.1f}x faster than dense)"
        )

    ok = lambda c: "MET" if c else "NOT MET"  # noqa: E731
    scope = "" if n_docs == 1_000_000 else f" (targets are set at 1M docs; this run has {n_docs:,})"
    print(f"  targets{scope}:")
    for name, (p50, _) in results.items():
        print(f"    {name:<12} p50 >= 5x faster than dense: {d50 / p50:.1f}x -> {ok(d50 / p50 >= 5)}")
    print(f"    memory <= 1/4 of dense: {mem / dense_bytes:.3f} -> {ok(mem <= dense_bytes / 4)}")
    print(f"    build >= 100,000 docs/s: {n_docs / build_s:,.0f} -> {ok(n_docs / build_s >= 100_000)}")
    return {"build_docs_s": n_docs / build_s, "memory_ratio": mem / dense_bytes, "dense_ms": (d50, d99), **results}


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
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="a trained D2S model directory: use real caption-proxy vectors instead of synthetic ones")
    parser.add_argument("--noise", type=float, default=0.1, help="model mode: relative weight noise of the copies")
    parser.add_argument("--drop", type=float, default=0.1, help="model mode: fraction of entries dropped in copies")
    args = parser.parse_args()
    src = None
    if args.model:
        src = load_proxy(args.model, args.queries, args.seed)
        stats = SparseBatch(src.docs).sparsity()
        print(
            f"D2S model {args.model}: encoded {src.docs.shape[0]:,} docs + 2x{len(src.q_exp)} queries in "
            f"{src.encode_s:.1f}s; doc nnz mean {stats['mean_nnz']:.1f} (p50 {stats['p50_nnz']:.0f}, "
            f"p99 {stats['p99_nnz']:.0f}); query nnz mean expanded {src.q_exp.csr.nnz / len(src.q_exp):.1f}, "
            f"no-expansion {src.q_noexp.csr.nnz / len(src.q_noexp):.1f}"
        )
    for n in args.docs:
        run(n, args, src)


if __name__ == "__main__":
    main()
