"""The application layer: index addresses, opening indexes and encoders, indexing jobs, typed modes, errors."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import lsr
from lsr.app.specs import IndexSpec, NewIndex
from lsr.backends.embedded_lock import WriterLock
from lsr.errors import IndexNotFoundError, InvalidInputError, LsrError, ModelNotFoundError
from lsr.exchange import write_jsonl
from lsr.project import project_root
from lsr.search.modes import Hybrid, Rerank, Retrieval, SetScoring, parse_mode
from lsr.sparse import SparseBatch, SparseVector
from tests.conftest import needs_minilm
from tests.test_sparse_encoder import CAPTIONS, HashTextEncoder, tiny_model

# ----------------------------------------------------------------------------- addresses


@pytest.mark.parametrize("address, expected", [
    ("runs/idx", IndexSpec("embedded", "runs/idx")),
    ("file://runs/idx", IndexSpec("embedded", "runs/idx")),
    ("opensearch://127.0.0.1:9200/f30k", IndexSpec("opensearch", "f30k", "http://127.0.0.1:9200")),
    ("opensearch+https://search.example:9201/f30k?kind=seismic",
     IndexSpec("opensearch", "f30k", "https://search.example:9201", "seismic")),
])
def test_index_addresses_parse_and_print_back(address, expected):
    spec = IndexSpec.parse(address)
    assert spec == expected and IndexSpec.parse(spec.address) == spec


@pytest.mark.parametrize("address, message", [
    ("opensearch://bob:secret@127.0.0.1:9200/f30k", "credentials do not go in the address"),
    ("opensearch://127.0.0.1:9200/", "names no single index"),
    ("opensearch://127.0.0.1:9200/a/b", "names no single index"),
    ("solr://127.0.0.1:8983/f30k", "unknown scheme 'solr'"),
    ("opensearch://127.0.0.1:9200/f30k?shards=3", "unknown option"),
    ("opensearch://127.0.0.1:9200/f30k?kind=hnsw", "Unknown index kind"),
])
def test_bad_addresses_are_refused_by_name(address, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        IndexSpec.parse(address)
    assert "secret" not in str(err.value)


# ----------------------------------------------------------------------------- modes


def test_mode_shorthands_parse_to_the_typed_modes():
    assert parse_mode(None) is None and parse_mode("sparse") is None
    assert parse_mode("rerank") == Rerank("dense", 100) and parse_mode("rerank:late:20") == Rerank("late", 20)
    assert parse_mode("hybrid") == Hybrid("min_max", 0.5) and parse_mode("hybrid:rrf") == Hybrid("rrf")
    assert parse_mode("hybrid:l2:0.3") == Hybrid("l2", 0.3) and parse_mode("hybrid:0.3") == Hybrid("min_max", 0.3)
    assert parse_mode("sets:avg") == SetScoring("avg") and parse_mode("sets:max:max") == SetScoring("max", "max")
    assert Hybrid("z_score", 0.2).fusion.weights == pytest.approx((0.2, 0.8))
    assert Retrieval("two_phase", {"prune_ratio": 0.4}).backend_options() == {
        "mode": "two_phase", "method_parameters": {"prune_ratio": 0.4}}
    assert Retrieval().backend_options() == {}
    for bad, message in (("rerank:cross", "Unknown re-ranker"), ("hybrid:min_max:x", "Mode 'hybrid:min_max:x'"),
                         ("hybrid:min_max:2", "sparse weight"), ("rerank:dense:0", "positive integer"),
                         ("ann", "Unknown mode"), ("sets:median", "SetScoring")):
        with pytest.raises(InvalidInputError, match=message):
            parse_mode(bad)


def test_hits_are_immutable_values():
    hit = lsr.Hit("a", 1.0, tokens={"dog": 0.7, "grass": 0.3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.score = 2.0  # type: ignore[misc]
    assert hit.top_tokens(1) == [("dog", 0.7)] and dataclasses.replace(hit, score=2.0).score == 2.0


# ----------------------------------------------------------------------------- opening


def test_open_index_refuses_a_missing_index_and_creates_on_request(tmp_path):
    with pytest.raises(IndexNotFoundError, match="No embedded index in .*lsr index"):
        lsr.open_index(tmp_path / "none")
    index = lsr.open_index(tmp_path / "new", create=True, new=NewIndex(vocab_size=100))
    index.index(["a"], SparseBatch.from_vectors([SparseVector.from_dict({3: 1.0})], 100))
    index.commit()
    index.close()
    reopened = lsr.open_index(str(tmp_path / "new"))
    assert reopened.count() == 1 and reopened.vocab_size == 100
    with pytest.raises(InvalidInputError, match="holds vectors over 100 tokens"):
        lsr.open_index(tmp_path / "new", create=True, new=NewIndex(vocab_size=200))
    assert lsr.open_index(tmp_path / "new", overwrite=True, new=NewIndex(vocab_size=200)).count() == 0


def test_load_encoder_refuses_a_directory_without_a_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match="is not a saved D2S model"):
        lsr.load_encoder(tmp_path)
    with pytest.raises(LsrError, match="Unknown image encoder"):
        lsr.load_encoder(lsr.EncoderSpec(image_encoder="clip"))


@needs_minilm
def test_a_replaced_dense_encoder_keeps_the_inference_free_query_table(vocab, tmp_path):
    """The bug of `lsr search --dense-encoder` on an inference-free model: the table was dropped and queries went
    through the dense model (same model hash, so the provenance check could not see it)."""
    from lsr.encoders.sparse import InferenceFreeEncoder

    table = np.random.default_rng(0).uniform(0.1, 3.0, size=len(vocab)).astype(np.float32)
    InferenceFreeEncoder(tiny_model(dim=384, record={"name": "minilm", "path": None}), table,
                         vocab=vocab).save_pretrained(tmp_path / "model")
    encoder = lsr.load_encoder(lsr.EncoderSpec(model=str(tmp_path / "model"), dense_encoder="minilm"))
    assert isinstance(encoder, InferenceFreeEncoder)
    query = encoder.encode_query(["a dog on the grass"])[0]
    assert sorted(vocab.token(int(t)) for t in query.ids) == ["a", "dog", "grass", "on", "the"]
    np.testing.assert_allclose(query.weights, table[query.ids], rtol=1e-6)


# ----------------------------------------------------------------------------- indexing, the CLI's errors


def _jsonl(tmp_path, vocab):
    path = tmp_path / "docs.jsonl"
    vectors = SparseBatch.from_vectors([SparseVector.from_dict({vocab.id(w): 1.0 for w in c.split()}) for c in CAPTIONS],
                                       len(vocab))
    write_jsonl(path, [f"c{i}" for i in range(len(CAPTIONS))], vectors, vocab, contents=CAPTIONS)
    return path


def test_index_jsonl_through_python_and_the_cli_give_the_same_index(vocab, tmp_path, capsys):
    from lsr.cli.main import main

    result = lsr.index_jsonl(tmp_path / "py", _jsonl(tmp_path, vocab), batch_size=3)  # two batches
    assert result.report.indexed == 4 and result.report.failed == {} and result.mean_nnz > 3
    assert main(["index", "--vectors", str(tmp_path / "docs.jsonl"), "--index", str(tmp_path / "cli")]) == 0
    assert "indexed 4 documents" in capsys.readouterr().out
    a, b = lsr.open_index(tmp_path / "py"), lsr.open_index(tmp_path / "cli")
    query = SparseVector.from_dict({vocab.id("dog"): 1.0, vocab.id("a"): 0.5})
    assert [(h.id, h.score, h.metadata) for h in a.search(query)] == [(h.id, h.score, h.metadata) for h in b.search(query)]
    assert a.metadata("c0") == {"caption": CAPTIONS[0]}


def test_a_locked_index_is_one_line_for_writers_and_no_obstacle_for_readers(vocab, tmp_path, capsys):
    from lsr.cli.main import main

    lsr.index_jsonl(tmp_path / "idx", _jsonl(tmp_path, vocab))
    lock = WriterLock(tmp_path / "idx")
    lock.acquire()
    try:
        assert main(["index", "--vectors", str(tmp_path / "docs.jsonl"), "--index", str(tmp_path / "idx")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: The index") and "locked by PID" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
        assert main(["-v", "index", "--vectors", str(tmp_path / "docs.jsonl"), "--index", str(tmp_path / "idx")]) == 2
        assert "Traceback" in capsys.readouterr().err  # -v shows where
        assert lsr.open_index(tmp_path / "idx").count() == 4  # readers are not blocked
    finally:
        lock.release()


def test_cli_errors_are_one_line(tmp_path, capsys):
    from lsr.cli.main import main

    assert main(["search", "a", "dog", "--index", str(tmp_path / "none"), "--model", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["search", "dog", "--index", "opensearch://127.0.0.1:9200/x", "--backend", "embedded", "--model",
                 str(tmp_path)]) == 2
    assert "is an opensearch address, but --backend says embedded" in capsys.readouterr().err
    assert main(["search", "--index", str(tmp_path), "--model", str(tmp_path)]) == 2
    assert "give a query" in capsys.readouterr().err


@needs_minilm
def test_search_cli_on_an_inference_free_model_with_a_dense_encoder_searches_by_the_table(vocab, tmp_path, capsys):
    from lsr.cli.main import main
    from lsr.encoders.sparse import InferenceFreeEncoder

    table = np.random.default_rng(0).uniform(0.1, 3.0, size=len(vocab)).astype(np.float32)
    encoder = InferenceFreeEncoder(tiny_model(dim=384, record={"name": "minilm", "path": None}), table, vocab=vocab)
    encoder.save_pretrained(tmp_path / "model")
    with lsr.EmbeddedIndex(vocab_size=len(vocab), directory=tmp_path / "idx") as index:
        index.index([f"c{i}" for i in range(4)], encoder.encode_document(CAPTIONS))
        index.record_provenance(encoder.provenance())
    assert main(["search", "a", "red", "car", "--index", str(tmp_path / "idx"), "--model", str(tmp_path / "model"),
                 "--dense-encoder", "minilm", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "(inference-free, 3 terms" in out and out.count("query: ") == 1  # the words are one query


# ----------------------------------------------------------------------------- the package's front


def test_the_type_stub_lists_exactly_the_lazy_exports():
    root = project_root() / "lsr"
    stub = ast.parse((root / "__init__.pyi").read_text())
    stubbed = {(node.module, alias.name) for node in stub.body if isinstance(node, ast.ImportFrom)
               for alias in node.names}
    exports = {(module, name) for name, module in lsr._EXPORTS.items()}
    assert stubbed == exports and (root / "py.typed").is_file()
    for name in lsr.__all__:
        assert getattr(lsr, name) is not None


def test_import_lsr_stays_cheap():
    code = ("import sys, lsr; lsr.open_index; lsr.IndexSpec; lsr.Hybrid; "
            "print(sorted(m for m in ('torch', 'transformers', 'opensearchpy', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
