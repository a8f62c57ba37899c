"""Two-stage dense re-ranking and hybrid fusion, in both backends (parity on the real node)."""

from __future__ import annotations

import numpy as np
import pytest

from lsr import EmbeddedIndex, SparseVector
from lsr.search.modes import Hybrid, Rerank
from lsr.backends.fusion import Fusion, fuse, normalise

V = 200


def sv(d: dict[int, float]) -> SparseVector:
    return SparseVector.from_dict(d)


def unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


# The tiny collection probed on the live node by hand (scores read from its responses).
DOCS = {"a": ({1: 2.0, 2: 1.0}, [1, 0, 0]), "b": ({1: 1.0}, [0, 1, 0]), "c": ({2: 3.0}, [0.6, 0.8, 0]),
        "d": ({3: 3.0}, [0, 0, 1])}
QUERY, DENSE_QUERY = sv({1: 1.0, 2: 0.5}), np.array([0, 1, 0.1], dtype=np.float32)


def tiny(index):
    ids = list(DOCS)
    report = index.index(ids, [sv(DOCS[i][0]) for i in ids], dense=np.array([DOCS[i][1] for i in ids], np.float32))
    assert report.indexed == 4 and not report.failed
    return index


def test_fusion_formulas_match_the_values_the_node_returned():
    sparse = {"a": 2.5, "c": 1.5, "b": 1.0}
    dense = {"b": 0.9975186, "c": 0.8980149, "d": 0.5497519}
    fused = fuse([sparse, dense], Fusion("min_max", 0.3))
    assert fused == pytest.approx({"b": 0.7003, "c": 0.6444445, "a": 0.3, "d": 0.0007}, rel=1e-4)
    rrf = fuse([sparse, dense], Fusion.parse("rrf"))
    assert rrf == pytest.approx({"b": 0.03226646, "c": 0.032258064, "a": 0.016393442, "d": 0.015873017}, rel=1e-6)


def test_normalisations_and_their_edge_cases():
    s = np.array([4.0, 2.0, 1.0], dtype=np.float32)
    assert normalise(s, "min_max").tolist() == pytest.approx([1.0, 1 / 3, 0.001])
    assert normalise(np.array([2.0, 2.0]), "min_max").tolist() == [1.0, 1.0]
    assert normalise(s, "l2").tolist() == pytest.approx((s / np.sqrt(21)).tolist())
    z = (s - s.mean()) / s.std(ddof=1)
    assert normalise(s, "z_score").tolist() == pytest.approx([z[0], 0.001, 0.001], rel=1e-6)  # <= 0 -> 0.001
    with pytest.raises(ValueError, match="Unknown fusion technique"):
        Fusion.parse("max:0.3")
    with pytest.raises(ValueError, match="not a number"):
        Fusion.parse("min_max:x")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Fusion.parse("l2:1.5")
    assert Fusion.parse("z_score:0.2").weights == pytest.approx((0.2, 0.8))


def test_dense_rerank_fixes_a_known_stage_one_order_and_keeps_misses(tmp_path):
    index = tiny(EmbeddedIndex(vocab_size=V, directory=tmp_path / "i"))
    assert [h.id for h in index.search(QUERY, k=3)] == ["a", "c", "b"]  # stage 1: sparse order
    hits = index.search_reranked(QUERY, DENSE_QUERY, k=3, candidates=3)
    assert [h.id for h in hits] == ["b", "c", "a"]  # by cosine with the dense query
    assert hits[0].score == pytest.approx(float(unit(0, 1, 0) @ unit(0, 1, 0.1)), rel=1e-6)
    assert hits[0].stages == {"sparse": 1.0, "dense": pytest.approx(hits[0].score)}
    # With 2 candidates stage 1 misses b: it stays missed, however well it matches densely.
    assert [h.id for h in index.search_reranked(QUERY, DENSE_QUERY, k=2, candidates=2)] == ["c", "a"]
    with pytest.raises(ValueError, match="cannot exceed the stage-1 candidates"):
        index.search_reranked(QUERY, DENSE_QUERY, k=5, candidates=3)
    index.commit()
    again = EmbeddedIndex.load(tmp_path / "i")
    assert again.dense_dim == 3
    assert [h.id for h in again.search_reranked(QUERY, DENSE_QUERY, k=3, candidates=3)] == ["b", "c", "a"]


def test_hybrid_in_process_returns_dense_only_documents_with_metadata():
    index = EmbeddedIndex(vocab_size=V)
    ids = list(DOCS)
    index.index(ids, [sv(DOCS[i][0]) for i in ids], [{"caption": i} for i in ids],
                dense=np.array([DOCS[i][1] for i in ids], np.float32))
    hits = index.search_hybrid(QUERY, DENSE_QUERY, k=4, fusion="min_max:0.3", depth=3)
    assert [h.id for h in hits] == ["b", "c", "a", "d"]  # as the node ranked them
    assert [h.score for h in hits] == pytest.approx([0.7003, 0.6444445, 0.3, 0.0007], rel=1e-4)
    assert hits[3].metadata == {"caption": "d"} and hits[3].stages["sparse"] == 0.0


def test_dense_rules_are_the_same_for_every_write():
    index = EmbeddedIndex(vocab_size=V)
    with pytest.raises(ValueError, match=r"one vector per document: shape \(2, dim\)"):
        index.index(["x", "y"], [sv({1: 1.0}), sv({2: 1.0})], dense=np.ones((3, 4)))
    report = index.index(["x", "y", "z"], [sv({1: 1.0}), sv({2: 1.0}), {999: 1.0}],
                         dense=np.array([[1, 0, 0, 0], [np.nan, 0, 0, 0], [1, 1, 0, 0]], dtype=np.float32))
    assert report.indexed == 1 and set(report.failed) == {"y", "z"} and "NaN" in report.failed["y"]
    with pytest.raises(ValueError, match="pass dense="):
        index.index(["w"], [sv({1: 1.0})])
    with pytest.raises(ValueError, match="keeps 4-d dense vectors; got 3-d"):
        index.index(["w"], [sv({1: 1.0})], dense=np.ones((1, 3)))
    with pytest.raises(ValueError, match="dense query is unusable"):
        index.search_reranked(sv({1: 1.0}), np.zeros(4), k=1)
    plain = EmbeddedIndex(vocab_size=V)
    plain.index(["p"], [sv({1: 1.0})])
    with pytest.raises(ValueError, match="built without dense vectors"):
        plain.index(["q"], [sv({1: 1.0})], dense=np.ones((1, 4)))
    with pytest.raises(ValueError, match="keeps no dense vectors"):
        plain.search_hybrid(sv({1: 1.0}), np.ones(4))


def random_collection(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    vecs = []
    for _ in range(n):
        t = np.sort(rng.choice(V, size=int(rng.integers(3, 12)), replace=False))
        vecs.append(SparseVector(t, rng.gamma(1.0, 1.0, size=t.size).astype(np.float32)))
    return [f"d{i}" for i in range(n)], vecs, rng.normal(size=(n, d)).astype(np.float32), rng


def assert_same_ranking(a, b, rel: float) -> None:
    """Same scores position by position within `rel`; the same score for every id both lists hold; an
    id only one list holds scores within `rel` of the other list's last place (a near-tie at the cut).
    Exact ties may be broken differently: the node breaks them by its internal doc order."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert y.score == pytest.approx(x.score, rel=rel, abs=1e-6)
    for this, other in ((a, b), (b, a)):
        theirs = {h.id: h.score for h in other}
        for h in this:
            if h.id in theirs:
                assert theirs[h.id] == pytest.approx(h.score, rel=rel, abs=1e-6)
            else:
                assert h.score <= other[-1].score * (1 + rel) + 1e-6, (h, other[-1])


@pytest.mark.opensearch
def test_rerank_and_hybrid_match_the_embedded_backend_on_the_node(make_index, vocab):
    """Re-ranking (rescore with Painless cosineSimilarity over a knn_vector) and hybrid (hybrid query + the
    pipeline files) inside OpenSearch against the in-process formulas. Tolerance: relative 1e-2 on the
    fused scores: the node keeps 9 significant bits of each sparse weight (sparse scores within 2^-8), and
    normalising over a result list amplifies that by up to max / (max - min) (min_max) or mean / std
    (z_score); re-ranked cosines come from the same float32 vectors (1e-5)."""
    ids, vecs, dense, rng = random_collection(300, 16, seed=5)
    embedded = EmbeddedIndex(vocab_size=len(vocab))
    embedded.index(ids, vecs, dense=dense)
    node = make_index()
    assert node.index(ids, vecs, dense=dense).indexed == 300 and node.dense_dim == 16
    assert node.dense_vectors(["d7"]) == pytest.approx(embedded.dense_vectors(["d7"]), abs=1e-6)
    for _ in range(6):
        t = np.sort(rng.choice(V, size=8, replace=False))
        q = SparseVector(t, rng.gamma(1.0, 1.0, size=8).astype(np.float32))
        qd = rng.normal(size=16).astype(np.float32)
        assert_same_ranking(embedded.search_reranked(q, qd, k=10, candidates=50),
                            node.search_reranked(q, qd, k=10, candidates=50), rel=1e-5)
        for fusion in ("min_max:0.3", "l2:0.5", "z_score:0.7", "rrf"):
            assert_same_ranking(embedded.search_hybrid(q, qd, k=10, fusion=fusion, depth=30),
                                node.search_hybrid(q, qd, k=10, fusion=fusion, depth=30), rel=1e-2)
    q, qd = vecs[1], dense[1]  # explain: each part's raw score, as the in-process path reports it
    theirs = {h.id: h for h in node.search_hybrid(q, qd, k=5, fusion="rrf", depth=30, explain=True)}
    for x in embedded.search_hybrid(q, qd, k=5, fusion="rrf", depth=30, explain=True):
        if x.id not in theirs:  # an RRF tie broken the other way at the cut
            continue
        y = theirs[x.id]
        assert y.stages["sparse"] == pytest.approx(x.stages["sparse"], rel=2 ** -8, abs=1e-6)
        assert y.stages["dense"] == pytest.approx(x.stages["dense"], rel=1e-5, abs=1e-6)
    with pytest.raises(ValueError, match="pass dense="):
        node.index(["new"], [vecs[0]])
    with pytest.raises(ValueError, match="not supported"):
        node.search_hybrid(vecs[0], dense[0], mode="two_phase")


class WordVectors:
    """A deterministic dense text encoder for the searcher tests: each word adds a fixed direction."""

    name, dim = "words", 8

    def encode_texts(self, texts, batch_size=128, show_progress=False) -> np.ndarray:
        import zlib

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.split():
                out[i] += np.random.default_rng(zlib.crc32(word.encode())).normal(size=self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_searcher_modes_over_the_embedded_backend(vocab):
    import torch

    from lsr import D2SConfig, D2SEncoder, D2SModel, SparseSearcher

    torch.manual_seed(0)
    encoder = D2SEncoder(D2SModel(D2SConfig(dense_dim=8, hidden_dim=16)), WordVectors(), vocab=vocab)
    captions = ["a dog runs on grass", "two men play guitars", "a red car on a street", "a cat sleeps on a sofa"]
    index = EmbeddedIndex(vocab_size=len(vocab))
    index.index([f"c{i}" for i in range(4)], encoder.encode_document(captions), [{"caption": c} for c in captions],
                dense=encoder.encode_query_dense(captions))
    searcher = SparseSearcher(index, encoder)
    query = captions[2]
    dense = searcher.search(query, k=4, mode=Rerank("dense", candidates=4))
    assert dense[0].id == "c2" and dense[0].score == pytest.approx(1.0, abs=1e-5)  # its own dense vector
    assert [h.id for h in dense] == [h.id for h in index.search_reranked(encoder.encode_query([query])[0],
                                                                          encoder.encode_query_dense([query])[0],
                                                                          k=4, candidates=4)]
    hybrid = searcher.search(query, k=3, mode=Hybrid("rrf", depth=4))
    assert hybrid[0].id == "c2" and hybrid[0].score == pytest.approx(2 / 61)  # first in both lists
    assert searcher.batch_search([query], k=3, mode="hybrid:rrf")[0][0].id == "c2"
    with pytest.raises(TypeError):  # one scoring mode per search: the keywords of before are gone
        searcher.search(query, rerank="dense", hybrid="rrf")
    with pytest.raises(ValueError, match="Unknown re-ranker"):
        searcher.search(query, mode="rerank:cross")
    with pytest.raises(ValueError, match="Unknown re-ranker"):
        Rerank("cross")
    with pytest.raises(ValueError, match="needs the documents' token vectors"):
        searcher.search(query, k=2, mode=Rerank("late", candidates=4))
    with pytest.raises(ValueError, match="image-text matching head"):
        searcher.search(query, k=2, mode=Rerank("itm", candidates=4))


def test_a_joint_models_dense_head_scores_the_dense_modes(vocab):
    """Re-ranking and hybrid search use the jointly trained dense head when the model has one: the index
    stores its vectors (`dense_vectors`), queries go through it, and the re-ranked scores are its cosines."""
    import torch

    from lsr import D2SConfig, D2SEncoder, D2SModel, SparseSearcher

    torch.manual_seed(0)
    model = D2SModel(D2SConfig(dense_dim=8, hidden_dim=16))
    frozen = WordVectors()
    captions = ["a dog runs on grass", "two men play guitars", "a red car on a street", "a cat sleeps on a sofa"]
    plain = D2SEncoder(model, frozen, vocab=vocab)
    assert np.array_equal(plain.dense_vectors(frozen.encode_texts(captions)), frozen.encode_texts(captions))
    model.add_dense_head()
    with torch.no_grad():  # a head that is not the identity: scales and mixes the coordinates
        model.dense_head.weight.copy_(torch.randn(8, 8))
        model.dense_head.bias.copy_(torch.randn(8))
    encoder = D2SEncoder(model, frozen, vocab=vocab)
    doc_dense = encoder.dense_vectors(frozen.encode_texts(captions))
    expected = torch.nn.functional.normalize(model.dense(torch.from_numpy(frozen.encode_texts(captions))), dim=1)
    assert np.allclose(doc_dense, expected.detach().numpy(), atol=1e-6)
    assert np.allclose(np.linalg.norm(doc_dense, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(doc_dense, frozen.encode_texts(captions), atol=1e-2)
    index = EmbeddedIndex(vocab_size=len(vocab))
    index.index([f"c{i}" for i in range(4)], encoder.encode_document(captions), dense=doc_dense)
    query = "a red car"
    q_head = encoder.encode_query_dense([query])[0]
    assert np.allclose(q_head, encoder.dense_vectors(frozen.encode_texts([query]))[0])
    hits = SparseSearcher(index, encoder).search(query, k=4, mode=Rerank("dense", candidates=4))
    by_id = {f"c{i}": float(doc_dense[i] @ q_head) for i in range(4)}
    assert [h.id for h in hits] == sorted(by_id, key=lambda d: -by_id[d])
    assert all(h.score == pytest.approx(by_id[h.id], abs=1e-5) for h in hits)
