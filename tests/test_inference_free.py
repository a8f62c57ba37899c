"""Inference-free queries: tokenization as OpenSearch's, the table encoder, its training, its export."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from lsr import D2SEncoder, EmbeddedIndex, SparseSearcher
from lsr.d2s.inference_free import InferenceFreeConfig, own_tokens, query_vectors, train_table
from lsr.encoders.inference_free import (WEIGHT_FLOOR, QueryTokens, idf_from_token_ids, load_table, save_table, stock_idf,
                                         table_from_idf_json, table_to_idf_json)
from lsr.encoders.sparse import InferenceFreeEncoder
from tests.conftest import synthetic_split
from tests.test_sparse_encoder import CAPTIONS, HashTextEncoder, tiny_model

# Strings OpenSearch must weigh exactly as we do: accents, punctuation, digits, CJK, long and repeated words.
BATTERY = ["a dog, a DOG!", "Café naïve RÉSUMÉ", "3 kids & 2 dogs at 10:30", "東京タワー の 夜景",
           "supercalifragilisticexpialidocious unbelievably", "red red red car", "x" * 150 + " cat",
           "[CLS] hello [SEP] [MASK]", "emoji 🐶 dog", "tab\tand\nnewline"]


@pytest.fixture()
def table(vocab) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = rng.uniform(0.1, 3.0, size=len(vocab)).astype(np.float32)
    t[vocab.id("a")] = 0.0  # a zero weight drops the token from the query
    return t


@pytest.fixture()
def encoder(vocab, table) -> InferenceFreeEncoder:
    return InferenceFreeEncoder(tiny_model(), table, HashTextEncoder(), vocab=vocab)


def test_query_tokens_are_distinct_non_special_wordpieces(vocab):
    tokens = QueryTokens(vocab)
    names = [[vocab.token(i) for i in ids] for ids in tokens(BATTERY)]
    assert sorted(names[0]) == sorted(["a", "dog", ",", "!"])  # lower-cased, each token once
    assert set(names[1]) == {"cafe", "naive", "resume"}  # accents stripped as bert-base-uncased does
    assert names[6] == ["cat"]  # an over-long word is [UNK], a special token: dropped
    assert names[7] == ["hello"]  # literal special tokens are dropped too
    assert all(np.all(np.diff(ids) > 0) for ids in tokens(BATTERY))
    assert tokens.tokenizer.truncation is None and tokens.tokenizer.padding is None


def test_encode_query_is_a_table_lookup_and_documents_are_d2s(encoder, table, vocab):
    q = encoder.encode_query(["a dog, a DOG!", "two men play guitars"])
    dog = dict(zip(q[0].ids.tolist(), q[0].weights.tolist()))
    expected = {vocab.id(t): float(table[vocab.id(t)]) for t in ("dog", ",", "!")}
    expected[vocab.id("a")] = WEIGHT_FLOOR  # zeroed by the table: the smallest weight OpenSearch accepts
    assert dog == pytest.approx(expected)
    assert encoder.encode_query(["red red red car"])[0].nnz == 2
    plain = D2SEncoder(encoder.model, HashTextEncoder(), vocab=vocab)
    np.testing.assert_allclose(encoder.encode_document(CAPTIONS).csr.toarray(), plain.encode_document(CAPTIONS).csr.toarray())
    assert encoder.provenance()["model_hash"] == plain.provenance()["model_hash"]  # an index of either serves both
    with pytest.raises(ValueError, match="non-negative"):
        InferenceFreeEncoder(tiny_model(), -table, vocab=vocab)
    with pytest.raises(ValueError, match="30522"):
        InferenceFreeEncoder(tiny_model(), table[:10], vocab=vocab)


def test_saved_model_loads_as_inference_free_and_searches(encoder, table, vocab, tmp_path):
    encoder.save_pretrained(tmp_path / "model")
    loaded = D2SEncoder.from_pretrained(tmp_path / "model", dense=HashTextEncoder(), vocab=vocab)
    assert isinstance(loaded, InferenceFreeEncoder) and loaded.model.config.query_encoder == "inference-free"
    np.testing.assert_array_equal(loaded.table, np.maximum(table, WEIGHT_FLOOR))
    index = EmbeddedIndex(vocab_size=len(vocab))
    index.index([f"c{i}" for i in range(4)], loaded.encode_document(CAPTIONS))
    hits = SparseSearcher(index, loaded).search("a dog runs on the grass", k=4)
    q = loaded.encode_query(["a dog runs on the grass"]).csr.toarray()[0]
    d = loaded.encode_document(CAPTIONS).csr.toarray()
    assert [h.id for h in hits] == [f"c{i}" for i in np.argsort(-(d @ q), kind="stable") if (d @ q)[i] > 0][:4]
    assert set(hits[0].tokens) <= {"a", "dog", "runs", "on", "the", "grass"}  # only the query's own words match
    save_table(np.full(len(vocab), -1.0, np.float32), tmp_path / "model")
    with pytest.raises(ValueError, match="non-negative"):
        load_table(tmp_path / "model", len(vocab))
    tiny_model().save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="without inference-free"):
        InferenceFreeEncoder.from_pretrained(tmp_path / "plain")


def test_idf_tables_and_the_stock_table_from_the_plugin_zip(vocab, tmp_path):
    idf = idf_from_token_ids([np.array([1, 2]), np.array([2]), np.array([2, 3])], 5)
    assert idf[2] == pytest.approx(np.log1p(0.5 / 3.5)) and idf[1] == pytest.approx(np.log1p(2.5 / 1.5))
    assert idf[4] == pytest.approx(np.log1p(3.5 / 0.5))  # never seen: the rarest
    table = table_from_idf_json({"dog": 5.0, "not-a-token-here": 9.0}, vocab)
    assert table[vocab.id("dog")] == 5.0 and table[vocab.id("cat")] == 1.0  # absent: 1.0, as ML Commons
    assert table_to_idf_json(table, vocab)["dog"] == 5.0 and len(table_to_idf_json(table, vocab)) == len(vocab)

    def zipped(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        return buffer.getvalue()

    analyzer = zipped({"idf.json": json.dumps({"dog": 7.5}).encode(), "tokenizer.json": b"{}"})
    jar = zipped({"analysis/bert-uncased.zip": analyzer})
    (tmp_path / "opensearch-ml-plugin-9.9.9.0.zip").write_bytes(zipped({"opensearch-ml-algorithms-9.9.9.0.jar": jar}))
    stock = stock_idf(vocab, tmp_path / "opensearch-ml-plugin-9.9.9.0.zip")
    assert stock[vocab.id("dog")] == 7.5 and stock[vocab.id("cat")] == 1.0
    with pytest.raises(FileNotFoundError, match="lsr opensearch start"):
        from lsr.node.install import find_ml_plugin_zip

        find_ml_plugin_zip(tmp_path / "empty")


@pytest.mark.parametrize("train_documents", [False, True])
def test_training_lowers_the_loss_and_freezes_documents_when_asked(train_documents):
    split = synthetic_split(n_docs=64, per_doc=4, dim=16, seed=1)
    dev = synthetic_split(n_docs=16, per_doc=4, dim=16, seed=2, name="dev")
    model = tiny_model(dim=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens = own_tokens(split.query_tokens, [0, 100, 101, 102, 103])
    cfg = InferenceFreeConfig(epochs=4, batch_size=64, train_documents=train_documents, lr_table=5e-2)
    initial = np.full(30522, 0.5, dtype=np.float32)
    table, result = train_table(model, initial, split, tokens, dev, own_tokens(dev.query_tokens, []), cfg,
                                show_progress=False)
    assert result.history[-1]["rank"] < result.history[0]["rank"]
    assert table.shape == (30522,) and np.all(table >= 0) and not np.allclose(table, initial)
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert changed == train_documents
    assert 1 <= result.best_epoch <= 4 and all(p.requires_grad for p in model.parameters())
    q = query_vectors(table, tokens[:3])
    assert [v.nnz for v in q] == [len(t) for t in tokens[:3]]  # a zeroed token keeps the floor weight


@pytest.mark.opensearch
def test_the_node_runs_the_query_table_itself(opensearch_url, make_index, encoder, vocab):
    """SPARSE_TOKENIZE upload: the node's weights equal ours on the battery, and a plain `query_text` request
    ranks as the embedded searcher does (within the node's 9-bit bound)."""
    from lsr.backends.opensearch.index import RELATIVE_SCORE_BOUND
    from lsr.backends.opensearch.text_query import search_text
    from lsr.backends.opensearch.tokenize_model import model_zip, register_tokenize_model, tokenize
    from tests.test_search_modes import assert_same_ranking

    files = encoder.tokenize_model_files()
    assert model_zip(files) == model_zip(files) and set(json.loads(files["idf.json"])) == set(vocab.tokens)
    index = make_index()
    model_id = register_tokenize_model(index.client, files, name="lsr-test-inference-free")
    assert register_tokenize_model(index.client, files, name="lsr-test-inference-free") == model_id  # reused
    for text, node, ours in zip(BATTERY, tokenize(index.client, model_id, BATTERY), encoder.encode_query(BATTERY)):
        assert node == pytest.approx({vocab.token(i): w for i, w in zip(ours.ids.tolist(), ours.weights.tolist())},
                                     rel=1e-6), text
    captions = CAPTIONS + ["a dog and a cat on a red sofa", "men with guitars on a street"]
    ids = [f"c{i}" for i in range(len(captions))]
    docs = encoder.encode_document(captions)
    index.index(ids, docs)
    index.commit()
    embedded = EmbeddedIndex(vocab_size=len(vocab))
    embedded.index(ids, docs)
    searcher = SparseSearcher(embedded, encoder)
    for text in ("a dog on the grass", "guitars in the street", "RED car!"):
        assert_same_ranking(searcher.search(text, k=5), search_text(index, text, k=5, model_id=model_id),
                            rel=2 * RELATIVE_SCORE_BOUND)


@pytest.mark.opensearch
def test_cli_registers_the_table_and_searches_server_side(opensearch_url, make_index, encoder, vocab, tmp_path, capsys):
    """`lsr opensearch register --inference-free` records the model on the index; `lsr search --server-side`
    then sends only words."""
    from lsr.cli.main import main

    encoder.model.config.dense_encoder = None
    encoder.save_pretrained(tmp_path / "model")
    index = make_index()
    index.index(["c0", "c1", "c2", "c3"], encoder.encode_document(CAPTIONS), [{"caption": c} for c in CAPTIONS])
    index.commit()
    assert main(["opensearch", "register", "--inference-free", "--model", str(tmp_path / "model"),
                 "--index", index.index_name, "--url", opensearch_url]) == 0
    out = capsys.readouterr().out
    model_id = out.split("model_id: ")[1].split()[0]
    assert index.remote_model()["model_id"] == model_id and f'"model_id": "{model_id}"' in out
    assert main(["search", "a red car", "--backend", "opensearch", "--index", index.index_name, "--url",
                 opensearch_url, "--server-side", "-k", "2"]) == 0
    embedded = EmbeddedIndex(vocab_size=len(vocab))
    embedded.index(["c0", "c1", "c2", "c3"], encoder.encode_document(CAPTIONS))
    top = SparseSearcher(embedded, encoder).search("a red car", k=1)[0].id  # the random model's own first hit
    assert f"1. {top} score" in capsys.readouterr().out
    tiny_model().save_pretrained(tmp_path / "plain")
    assert main(["opensearch", "register", "--inference-free", "--model", str(tmp_path / "plain"),
                 "--url", opensearch_url]) == 2
    assert "no inference-free query table" in capsys.readouterr().err
