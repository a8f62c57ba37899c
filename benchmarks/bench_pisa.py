"""Compare the embedded index with PISA (PyPI `pyterrier-pisa`) on the same quantized D2S vectors.

The corpus and queries are those of `bench_embedded.py --model DIR` (same seed, same noisy copies):
real D2S caption-proxy documents scaled to `--docs N`, and D2S vectors of real Flickr30k test
captions (expanded and no-expansion). All weights are quantized to integer impacts round(w * Q)
(`--quantize`, default 100; zeros dropped) exactly as `lsr.exchange.write_jsonl(..., quantize=Q)`
writes them, and BOTH engines index and query those integers, so both compute the same integer dot
products and their top-10 lists are comparable:

- embedded: `EmbeddedIndex` over the quantized weights (exact float32 sums of integer products);
- PISA: documents exported with `write_jsonl(..., quantize=Q)` (or, with `--export direct`, fed
  straight from the arrays) into `PisaIndex(stemmer='none', stops='none').toks_indexer(scale=1)`,
  queried by `PisaIndex.quantized(toks_scale=1)` with `query_toks` = {token: integer weight}
  (pyterrier-pisa repeats each query term weight times, so PISA's weighted "quantized" scorer sums
  q_w * d_w).

Tokens are named by decimal id by default (`--naming id`, lossless). With `--naming wordpiece`
the five special tokens with capitals ([PAD], [UNK], [CLS], [SEP], [MASK]) are indexed by PISA but
never matched, because its query term processor lowercases terms; the script warns when that loses
postings.

Reported per query set: single-query top-10 latency p50/p99 for the embedded index and for each
PISA query algorithm (`--pisa-algorithms`; the PISA engine call `pyterrier_pisa._pisathon.retrieve`
with one query, a private pyterrier-pisa function used to leave out pandas), PISA through its
PyTerrier transformer (one-row frame), and agreement with the embedded top-10: the fraction of
queries with identical top-10 id sets, the mean overlap@10 (|A & B| / max(|A|, |B|)), the
fraction with identical score lists (the same ranking up to ties at equal scores) and with
identical ranked id lists.

    pip install 'mm-lsr-opensearch[bench]'
    python benchmarks/bench_pisa.py --model runs/f30k-full/model --docs 100000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embedded import index_chunks, load_proxy, noisy_sparse_copies, timed  # noqa: E402

from lsr.backends.embedded import EmbeddedIndex  # noqa: E402
from lsr.exchange import write_jsonl  # noqa: E402
from lsr.sparse import SparseBatch  # noqa: E402
from lsr.vocab import Vocabulary


def quantize_csr(m: sp.csr_matrix, q: int) -> sp.csr_matrix:
    """Integer impacts round(w * q) as float32, zeros dropped: the same numbers `write_jsonl(quantize=q)` writes."""
    out = sp.csr_matrix((np.rint(m.data * q).astype(np.float32), m.indices.copy(), m.indptr.copy()), shape=m.shape)
    out.eliminate_zeros()
    return out


def pisa_docs_direct(chunks: list[sp.csr_matrix], ids: list[str], names: np.ndarray) -> Iterator[dict]:
    row = 0
    for c in chunks:
        data = c.data.astype(np.int64)
        for i in range(c.shape[0]):
            s, e = c.indptr[i], c.indptr[i + 1]
            yield {"docno": ids[row], "toks": dict(zip(names[c.indices[s:e]].tolist(), data[s:e].tolist()))}
            row += 1


def pisa_docs_jsonl(files: list[Path], counts: list[int]) -> Iterator[dict]:
    """PISA documents from JSON-lines files; appends the number of postings read to `counts`."""
    n = 0
    for path in files:
        with path.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                n += len(record["vector"])
                yield {"docno": record["id"], "toks": record["vector"]}
    counts.append(n)


def query_dicts(queries: SparseBatch, names: np.ndarray) -> list[dict[str, float]]:
    return [
        dict(zip(names[q.ids].tolist(), q.weights.astype(np.float64).tolist())) for q in queries
    ]


@contextlib.contextmanager
def quiet(log: Path, enabled: bool = True):
    """Send the process's stdout/stderr (PISA's C++ logs, progress bars) to `log`; its tail is shown on errors."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log.open("ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def compare(emb: list[list], pisa: dict[int, tuple[list[str], np.ndarray]], show: int = 0) -> dict[str, float]:
    """Agreement of two engines' top-k lists; overlap is |A & B| / max(|A|, |B|) (1 when both are empty)."""
    same_set = same_list = same_scores = 0
    overlap = []
    shown = 0
    for i, hits in enumerate(emb):
        a_ids = [h.id for h in hits]
        a_scores = np.array([h.score for h in hits], dtype=np.float64)
        b_ids, b_scores = pisa.get(i, ([], np.zeros(0)))
        same_set += set(a_ids) == set(b_ids)
        same_list += a_ids == list(b_ids)
        score_eq = a_scores.shape == b_scores.shape and bool(np.all(a_scores == b_scores))
        same_scores += score_eq
        denom = max(len(a_ids), len(b_ids))  # k, unless fewer documents match the query
        overlap.append(len(set(a_ids) & set(b_ids)) / denom if denom else 1.0)
        if shown < show and (a_ids != list(b_ids) or not score_eq):
            shown += 1
            print(f"    query {i}: embedded {list(zip(a_ids, a_scores.tolist()))}")
            print(f"    query {i}: PISA     {list(zip(b_ids, b_scores.tolist()))}")
    n = max(len(emb), 1)
    return {
        "same_top_set": same_set / n,
        "same_ranked_list": same_list / n,
        "same_score_list": same_scores / n,
        "mean_overlap": float(np.mean(overlap)) if overlap else 0.0,
    }


def pisa_one(retr, d: dict, k: int, out: tuple) -> None:
    """One query through the PISA engine call that PisaRetrieve.transform makes, without pandas."""
    from pyterrier_pisa import _pisathon

    _pisathon.retrieve(
        retr._ctxt, retr.query_algorithm.value, [(0, d)], k=k, threads=1, query_weighted=1, pretokenised=True,
        result_qidxs=out[0], result_docnos=out[1], result_ranks=out[2], result_scores=out[3],
    )




def run(n_docs: int, args: argparse.Namespace, src, vocab: Vocabulary, names: np.ndarray, work: Path) -> None:
    import pandas as pd
    from pyterrier_pisa import PisaIndex

    q, k = args.quantize, args.k
    rng = np.random.default_rng(args.seed + n_docs)  # the corpus of bench_embedded.py at this size
    chunks = noisy_sparse_copies(src.docs, n_docs, rng, args.noise, args.drop)  # float weights
    ids = [f"doc-{i}" for i in range(n_docs)]
    files: list[Path] = []
    if args.export == "jsonl":  # export the float vectors: write_jsonl quantizes them itself
        t0 = time.perf_counter()
        row = 0
        for j, c in enumerate(chunks):
            path = work / f"docs-{n_docs}-{j:04d}.jsonl"
            write_jsonl(path, ids[row : row + c.shape[0]], SparseBatch(c), vocab, naming=args.naming, quantize=q)
            files.append(path)
            row += c.shape[0]
        export_s = time.perf_counter() - t0
        jsonl_bytes = sum(f.stat().st_size for f in files)
    chunks = [quantize_csr(c, q) for c in chunks]
    n_postings = sum(c.nnz for c in chunks)
    max_w = max(float(c.data.max()) for c in chunks if c.nnz)
    print(f"== {n_docs:,} D2S caption-proxy docs from {src.model_dir}, weights quantized to round(w*{q})")
    print(
        f"  corpus: {src.docs.shape[0]:,} real D2S vectors + noisy copies (x (1 + {args.noise:g}*N(0,1)), "
        f"p={args.drop:g} drop), as in bench_embedded.py; {n_postings:,} postings ({n_postings / n_docs:.1f}/doc), "
        f"max doc impact {max_w:.0f}; tokens named by {args.naming}"
    )
    # PISA's query-side term processor lowercases terms, so a token with capitals can be indexed but never matched.
    unmatchable = np.array([t != t.lower() for t in names.tolist()])
    lost = sum(int(unmatchable[c.indices].sum()) for c in chunks)
    if lost:
        print(
            f"  WARNING: {lost:,} document postings are on tokens with capitals "
            f"({', '.join(sorted(set(names[unmatchable].tolist())))}), which PISA lowercases at query time and so "
            "never matches: expect disagreements (use --naming id for a like-for-like comparison)"
        )

    # ---- PISA index (built first: the export reads the chunks, the embedded build consumes them)
    pisa_path = work / f"pisa-{n_docs}"
    shutil.rmtree(pisa_path, ignore_errors=True)
    read_counts: list[int] = []
    if args.export == "jsonl":
        docs_iter = pisa_docs_jsonl(files, read_counts)
        print(
            f"  export: write_jsonl(naming={args.naming!r}, quantize={q}) {export_s:.1f}s "
            f"({jsonl_bytes / 2**20:.0f} MiB JSON lines)"
        )
    else:
        docs_iter = pisa_docs_direct(chunks, ids, names)
    log = work / "pisa.log"
    retrievers = {}
    with quiet(log, not args.verbose):
        t0 = time.perf_counter()
        pisa = PisaIndex(str(pisa_path), stemmer="none", stops="none", threads=1)
        pisa.toks_indexer(scale=1.0).index(docs_iter)
        invert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for alg in args.pisa_algorithms:  # the first one builds the wand data and compresses the index
            retrievers[alg] = pisa.quantized(num_results=k, toks_scale=1.0, query_algorithm=alg, threads=1)
        compress_s = time.perf_counter() - t0
    for f in files:
        f.unlink()
        f.with_name(f.name + ".meta.json").unlink(missing_ok=True)
    if pisa.num_docs() != n_docs:
        raise SystemExit(f"PISA indexed {pisa.num_docs()} docs, expected {n_docs}")
    if read_counts and read_counts[0] != n_postings:
        raise SystemExit(f"write_jsonl wrote {read_counts[0]:,} postings, the quantized arrays hold {n_postings:,}")
    print(
        f"  PISA build: toks_indexer {invert_s:.1f}s + wand data/compression {compress_s:.1f}s "
        f"= {n_docs / (invert_s + compress_s):,.0f} docs/s; on disk {dir_bytes(pisa_path) / 2**20:.1f} MiB "
        f"(encoding {pisa.index_encoding.value})"
    )

    # ---- embedded index on the same integers
    index = EmbeddedIndex()
    t0 = time.perf_counter()
    index_chunks(index, ids, chunks, args.batch)
    index.compact()
    build_s = time.perf_counter() - t0
    print(
        f"  embedded build: {build_s:.2f}s = {n_docs / build_s:,.0f} docs/s; "
        f"memory {index.memory_bytes() / 2**20:.1f} MiB"
    )

    out = (np.empty(k, np.int32), np.empty(k, object), np.empty(k, np.int32), np.empty(k, np.float32))
    for name, queries_f in (("expanded", src.q_exp), ("no-expansion", src.q_noexp)):
        queries = SparseBatch(quantize_csr(queries_f.csr, q))
        qd = query_dicts(queries, names)
        empty = int(np.sum(queries.nnz_per_row() == 0))
        max_q = float(queries.csr.data.max()) if queries.csr.nnz else 0.0
        emb = index.search_batch(queries, k=k)
        max_score = max((h[0].score for h in emb if h), default=0.0)
        print(
            f"  {name} queries: {len(qd)} (mean nnz {queries.csr.nnz / len(qd):.1f}, max impact {max_q:.0f}"
            f"{f', {empty} empty' if empty else ''}); top score {max_score:,.0f}"
            f"{' (> 2**24: float32 sums may round)' if max_score > 2**24 else ''}"
        )
        e50, e99 = timed(lambda v: index.search(v, k=k), list(queries))
        print(f"    embedded                 top-{k}: p50 {e50:.3f} ms, p99 {e99:.3f} ms")
        frame = pd.DataFrame({"qid": [str(i) for i in range(len(qd))], "query_toks": qd})
        for alg, retr in retrievers.items():
            with quiet(log, not args.verbose):
                res = retr(frame)
            hits = {
                int(qid): (g["docno"].tolist(), g["score"].to_numpy(np.float64))
                for qid, g in res.sort_values(["qid", "rank"]).groupby("qid")
            }
            cmp = compare(emb, hits, args.show_diffs)
            p50, p99 = timed(lambda d: pisa_one(retr, d, k, out), qd)
            print(
                f"    PISA {alg:<19} top-{k}: p50 {p50:.3f} ms, p99 {p99:.3f} ms; "
                f"p50 time embedded/PISA {e50 / p50:.2f}x; "
                f"vs embedded: same id set {cmp['same_top_set']:.1%}, mean overlap@{k} {cmp['mean_overlap']:.4f}, "
                f"same score list {cmp['same_score_list']:.1%}, same ranked list {cmp['same_ranked_list']:.1%}"
            )
        alg, retr = next(iter(retrievers.items()))
        with quiet(log, not args.verbose):
            t50, t99 = timed(lambda i: retr(frame.iloc[i : i + 1]), list(range(min(len(qd), args.pt_queries))))
        print(f"    PISA {alg} via PyTerrier (one-row frame, {min(len(qd), args.pt_queries)} queries): "
              f"p50 {t50:.3f} ms, p99 {t99:.3f} ms")
    del index, retrievers
    if not args.keep:
        shutil.rmtree(pisa_path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="DIR", help="a trained D2S model directory")
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000], help="corpus sizes to run")
    parser.add_argument("--queries", type=int, default=300, help="test captions to query with")
    parser.add_argument("--quantize", type=int, default=100, help="integer impacts round(w * Q)")
    parser.add_argument("--export", choices=("jsonl", "direct"), default="jsonl",
                        help="feed PISA from write_jsonl files (default) or straight from the arrays")
    parser.add_argument("--pisa-algorithms", nargs="+", default=["block_max_wand", "maxscore", "ranked_or"],
                        help="PISA query algorithms to time (the first is also timed through PyTerrier)")
    parser.add_argument("--naming", choices=("id", "wordpiece"), default="id",
                        help="token names given to PISA: decimal ids (default; lossless) or WordPiece strings")
    parser.add_argument("--pt-queries", type=int, default=100, help="queries timed through the PyTerrier transformer")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10_000, help="documents per EmbeddedIndex.index() call")
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--drop", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where the PISA index and JSON lines go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the PISA index")
    parser.add_argument("--show-diffs", type=int, default=0, help="print this many queries whose top-k lists differ")
    parser.add_argument("--verbose", action="store_true", help="show PISA's own logs")
    args = parser.parse_args()

    try:
        import pyterrier_pisa
    except ImportError as exc:
        raise SystemExit(f"pyterrier-pisa is not installed ({exc}); pip install 'mm-lsr-opensearch[bench]'") from None
    if not args.verbose:
        logging.getLogger("ir_datasets").setLevel(logging.WARNING)
    print(f"pyterrier-pisa {pyterrier_pisa.__version__}")

    src = load_proxy(args.model, args.queries, args.seed)
    vocab = Vocabulary()
    tokens = vocab.tokens if args.naming == "wordpiece" else [str(i) for i in range(len(vocab))]
    names = np.asarray(tokens, dtype=object)
    print(
        f"D2S model {args.model}: encoded {src.docs.shape[0]:,} docs + 2x{len(src.q_exp)} queries "
        f"in {src.encode_s:.1f}s"
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.docs:
            run(n, args, src, vocab, names, Path(tmp))


if __name__ == "__main__":
    main()
