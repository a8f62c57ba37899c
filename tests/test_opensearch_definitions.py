"""Mappings and pipelines are package data (`lsr.definitions`), read from the top-level folders."""

from __future__ import annotations

import json

import pytest

from lsr.backends.opensearch import client as opensearch


def test_definitions_load_from_the_checkout():
    mapping = opensearch.load_definition("mappings", "sparse_rank_features.json")
    assert mapping["mappings"]["properties"]["sparse"]["type"] == "rank_features"
    assert mapping["mappings"]["dynamic"] == "strict"
    pipeline = opensearch.two_phase_pipeline()
    assert "description" not in pipeline
    params = pipeline["request_processors"][0]["neural_sparse_two_phase_processor"]["two_phase_parameter"]
    assert params["prune_type"] == "max_ratio"
    tuned = opensearch.two_phase_pipeline({"prune_ratio": 0.1, "expansion_rate": 20.0})
    tuned_params = tuned["request_processors"][0]["neural_sparse_two_phase_processor"]["two_phase_parameter"]
    assert tuned_params["prune_ratio"] == 0.1 and tuned_params["expansion_rate"] == 20.0
    assert tuned_params["prune_type"] == params["prune_type"]  # the rest comes from the file
    with pytest.raises(ValueError, match="Unknown two-phase"):
        opensearch.two_phase_pipeline({"k": 5})


def test_definitions_are_package_data_from_the_top_level_folders():
    """`lsr.definitions` reads the checkout's mappings/ and pipelines/ (the single source) as package data;
    tests/test_wheel_install.py reads them from an installed wheel."""
    from importlib.resources import files

    from lsr.definitions import definition_names, load_definition
    from lsr.project import project_root

    for kind in ("mappings", "pipelines"):
        on_disk = sorted(p.name for p in (project_root() / kind).glob("*.json"))
        assert on_disk and definition_names(kind) == on_disk
        for name in on_disk:
            assert load_definition(kind, name) == json.loads((project_root() / kind / name).read_text())
        assert not list((project_root() / "lsr").rglob(f"{kind}/*.json")), "a second copy inside lsr/"
    assert files("lsr.definitions.mappings").joinpath("dense_knn.json").is_file()
    assert opensearch.load_definition is load_definition
    with pytest.raises(FileNotFoundError, match="sparse_rank_features.json"):
        load_definition("mappings", "no_such_mapping.json")  # the message lists the known ones
    with pytest.raises(ValueError, match="Unknown definition kind"):
        load_definition("templates", "x.json")


def test_client_serializer_handles_numpy_and_falls_back():
    from decimal import Decimal

    import numpy as np

    serializer = opensearch.connect("http://127.0.0.1:9").transport.serializer  # no request is sent
    assert json.loads(serializer.dumps({"w": np.float32(0.5), "ids": np.array([1, 2])})) == {"w": 0.5, "ids": [1, 2]}
    assert json.loads(serializer.dumps({"price": Decimal("1.25")})) == {"price": 1.25}  # orjson can't: stock rules
    assert serializer.dumps('{"already": "json"}') == '{"already": "json"}'


def test_search_requests_are_built_and_checked_without_a_node(vocab):
    """Request bodies and search-mode checks need no node (nothing is sent to the unused port)."""
    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.sparse import SparseVector

    index = OpenSearchIndex("http://127.0.0.1:9", index="offline", vocab=vocab)
    query = SparseVector([vocab.id("dog"), vocab.id("##ing")], [2.0, 0.5])
    body, sent, scale = index.request(query, k=3)
    assert body["size"] == 3 and scale == 1.0 and sent.nnz == 2
    assert body["query"]["neural_sparse"]["sparse"]["query_tokens"] == {"dog": 2.0, "##ing": 0.5}
    assert "search_pipeline" in index.request(query, k=3, mode="two_phase")[0]
    for call in (lambda: index.request(query, mode="fast"), lambda: index.search(query, mode="fast"),
                 lambda: index.search_batch([query], mode="fast")):
        with pytest.raises(ValueError, match="Unknown search mode 'fast'; choose one of exact, two_phase, ann"):
            call()
    with pytest.raises(ValueError, match="Sparse ANN needs an index of kind 'seismic'"):
        index.search(query, mode="ann")
    with pytest.raises(ValueError, match="Unknown search option"):
        index.search(query, modes="exact")
