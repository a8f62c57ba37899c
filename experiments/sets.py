"""The set-of-embeddings experiment on the caption proxy (`python -m experiments.modes sets`).

Each Flickr30k test image becomes a set of two members, its captions 0 and 1 (MiniLM vectors and their
D2S sparse vectors); captions 2-4 are the text->image queries (one relevant image each). Compared:
one member only (caption 0), sparse sets aggregated max / sum / avg (`EmbeddedSetIndex`), dense sets
by best pair / mean pair / smooth-Chamfer over every document (DivE's brute force), smooth-Chamfer
re-scoring the sparse-max top 100, and query-side sets (captions 2 and 3 as two phrasings of one query).
"""

from __future__ import annotations

import numpy as np

from lsr.backends.embedded import EmbeddedIndex
from lsr.backends.embedded_sets import EmbeddedSetIndex
from experiments.modes import p50_ms, recall

ALPHA = 16.0


def dense_set_scores(query_set: np.ndarray, doc_sets: np.ndarray, how: str, alpha: float = ALPHA) -> np.ndarray:
    """`lsr.search.sets.set_similarity` vectorised over documents: query (m, d), documents (n, s, d)."""
    c = np.einsum("md,nsd->nms", query_set.astype(np.float64), doc_sets.astype(np.float64))
    if how == "max":
        return c.max(axis=(1, 2))
    if how == "mean":
        return c.mean(axis=(1, 2))
    a = alpha * c
    lse = lambda x, axis: x.max(axis=axis) + np.log(np.exp(x - x.max(axis=axis, keepdims=True)).sum(axis=axis))  # noqa: E731
    return (lse(a, 2).mean(axis=1) + lse(a, 1).mean(axis=1)) / (2 * alpha)


def run_sets_experiment(model_dir: str, split_spec: str = "proxy:f30k/test", latency_queries: int = 200) -> dict:
    from lsr.data.sources import load_split_spec
    from lsr.encoders.sparse import D2SEncoder
    from lsr.vocab import Vocabulary

    vocab = Vocabulary()
    split = load_split_spec(split_spec, vocab)
    encoder = D2SEncoder.from_pretrained(model_dir, vocab=vocab)
    n = len(split.doc_ids)
    by_doc = [np.flatnonzero(split.query_doc == d) for d in range(n)]  # captions 1-4 of each image
    if min(len(r) for r in by_doc) < 3:
        raise ValueError(f"{split.name}: the set experiment needs at least 4 captions per image.")
    member1 = np.array([r[0] for r in by_doc])
    queries = np.concatenate([r[1:] for r in by_doc])  # captions 2-4
    qdoc = split.query_doc[queries]
    dense_sets = np.stack([split.doc_emb, split.query_emb[member1]], axis=1)  # (n, 2, d)
    sparse0 = encoder.encode_dense(split.doc_emb)
    sparse1 = encoder.encode_dense(split.query_emb[member1])
    q_sparse = list(encoder.encode_dense(split.query_emb[queries]))
    q_dense = split.query_emb[queries]
    n_lat = min(latency_queries, len(queries))

    single = EmbeddedIndex(vocab_size=len(vocab))
    single.index(split.doc_ids, sparse0)
    sets = EmbeddedSetIndex(vocab_size=len(vocab))
    sets.index(split.doc_ids, [[sparse0[d], sparse1[d]] for d in range(n)])
    row = {d: i for i, d in enumerate(split.doc_ids)}
    rows = []

    def add(mode: str, ranked: list, timed) -> None:
        rows.append({"mode": mode, **recall(ranked, qdoc), "p50_ms": p50_ms(timed, n_lat)})

    add("sparse, one member (caption 0)", [[row[h.id] for h in hits] for hits in single.search_batch(q_sparse, k=10)],
        lambda i: single.search(q_sparse[i], k=10))
    add("dense, one member (caption 0)", list(np.argsort(-(q_dense @ split.doc_emb.T), axis=1)[:, :10]),
        lambda i: np.argsort(-(split.doc_emb @ q_dense[i]))[:10])
    for mode in ("max", "sum", "avg"):
        add(f"sparse set, {mode} over members", [[row[h.id] for h in sets.search(q, k=10, score_mode=mode)]
                                                 for q in q_sparse],
            lambda i, mode=mode: sets.search(q_sparse[i], k=10, score_mode=mode))
    for how in ("max", "mean", "smooth_chamfer"):
        add(f"dense set, {how} (every document)",
            [list(np.argsort(-dense_set_scores(q_dense[i:i + 1], dense_sets, how), kind="stable")[:10])
             for i in range(len(queries))],
            lambda i, how=how: np.argsort(-dense_set_scores(q_dense[i:i + 1], dense_sets, how))[:10])

    def chamfer_rescored(i: int) -> list[int]:
        cands = [row[h.id] for h in sets.search(q_sparse[i], k=100, score_mode="max")]
        s = dense_set_scores(q_dense[i:i + 1], dense_sets[cands], "smooth_chamfer")
        return [cands[j] for j in np.argsort(-s, kind="stable")[:10]]

    add("sparse set max top 100 -> smooth-Chamfer", [chamfer_rescored(i) for i in range(len(queries))],
        chamfer_rescored)
    # Query-side sets: captions 2 and 3 of an image as two phrasings of one query.
    pairs = [r[1:3] for r in by_doc]
    pair_doc = np.arange(n)
    pair_sparse = [list(encoder.encode_dense(split.query_emb[p])) for p in pairs]
    ranked = [[row[h.id] for h in sets.search(p, k=10, score_mode="max", query_mode="sum")] for p in pair_sparse]
    rows.append({"mode": "query set (captions 2+3): sparse set max, phrasings summed", **recall(ranked, pair_doc),
                 "p50_ms": p50_ms(lambda i: sets.search(pair_sparse[i], k=10), min(n_lat, n))})
    ranked = [list(np.argsort(-dense_set_scores(split.query_emb[p], dense_sets, "smooth_chamfer"), kind="stable")[:10])
              for p in pairs]
    rows.append({"mode": "query set (captions 2+3): dense smooth-Chamfer", **recall(ranked, pair_doc),
                 "p50_ms": p50_ms(lambda i: np.argsort(-dense_set_scores(split.query_emb[pairs[i]], dense_sets,
                                                                          "smooth_chamfer"))[:10], min(n_lat, n))})
    return {"split": split.name, "direction": "text->image", "queries": len(queries), "documents": n,
            "alpha": ALPHA, "source": "caption proxy (MiniLM teacher; a document is the set of captions 0 and 1)",
            "rows": rows, "table": {r["mode"]: r for r in rows},
            "dense_set_bytes": int(dense_sets.astype(np.float32).nbytes),
            "sparse_set_index_bytes": sets._members.memory_bytes()}
