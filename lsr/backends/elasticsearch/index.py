"""The Elasticsearch backend: a real index behind the same interface as the embedded and OpenSearch ones.

The sparse vector lives in a ``sparse_vector`` field (``mappings/es_sparse_vector.json``) keyed by the
escaped WordPiece tokens of `lsr.backends.features` (dotted names, refused by earlier releases, are
escaped; the same escape on documents and queries, and explanations show the real token). Writing, reading back,
provenance in the mapping's ``_meta`` and the load settings are shared with OpenSearch
(`lsr.backends.remote`).

Search modes:

- ``exact`` (default): the ``sparse_vector`` query with ``"prune": false``: sum(q * d) over shared tokens.
  (From 8.19 the query prunes by default, which loses recall: it must be asked not to.)
- ``two_phase`` (alias ``pruned``): the same query with ``"prune": true``: query tokens that are frequent
  in the index and light in the query are left out of scoring (``pruning_config``:
  ``tokens_freq_ratio_threshold``, ``tokens_weight_threshold``, ``only_score_pruned_tokens``, given as
  `method_parameters`), the engine's counterpart of OpenSearch's two-phase search.

Scores: ``sparse_vector`` stores weights as Lucene FeatureField values (9 significant bits, truncated), so
each stored weight and every score is within a relative 2^-8 below the exact one, as with OpenSearch's
``rank_features``: ``exact * (1 - 2^-8) <= score <= exact``.

Dense re-ranking and hybrid search: the integ-test distribution has no Painless (so no
``script_score`` cosine in a ``rescore``) and no RRF / linear retrievers (``unknown retriever [rrf]``):
re-ranking takes the sparse top N with their stored ``dense_vector`` in one request and orders them by
cosine here; hybrid search fuses the engine's sparse top `depth` and its ``knn`` top `depth` with the
formulas of `lsr.backends.fusion` (those of OpenSearch's pipelines).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Mapping

import numpy as np

from lsr.backends.base import Hit, rescore
from lsr.backends.bulk import BulkSettings
from lsr.backends.elasticsearch.client import ENGINE, connect, read_with_retries
from lsr.backends.features import FeatureNaming
from lsr.backends.remote import RemoteIndex, shard_settings
from lsr.definitions import load_definition
from lsr.errors import InvalidInputError
from lsr.sparse import SparseVector
from lsr.vocab import Vocabulary

log = logging.getLogger(__name__)

RELATIVE_SCORE_BOUND = 2.0 ** -8  # FeatureField keeps 9 significant bits
SEARCH_MODES = ("exact", "two_phase", "pruned")
PRUNING_KEYS = ("tokens_freq_ratio_threshold", "tokens_weight_threshold", "only_score_pruned_tokens")


def sparse_clause(features: Mapping[str, float], field: str, prune: bool,
                  pruning: Mapping[str, Any] | None = None) -> dict:
    """The ``sparse_vector`` query of `features` on `field`: exact, or pruned with `pruning`."""
    body: dict[str, Any] = {"field": field, "query_vector": dict(features), "prune": bool(prune)}
    if prune and pruning:
        unknown = set(pruning) - set(PRUNING_KEYS)
        if unknown:
            raise InvalidInputError(f"Unknown pruning parameters {sorted(unknown)}; use {', '.join(PRUNING_KEYS)}.")
        body["pruning_config"] = dict(pruning)
    return {"sparse_vector": body}


class ElasticsearchIndex(RemoteIndex):
    """One Elasticsearch index of sparse vectors (and optional dense vectors); see the module docstring."""

    ENGINE = ENGINE
    DENSE_DIM_KEY = "dims"

    def __init__(self, client_or_url, index: str = "lsr", vocab: Vocabulary | None = None, field: str = "sparse",
                 bulk: BulkSettings | None = None):
        self.client = connect(client_or_url)
        self.index_name = index
        self.kind = "sparse_vector"
        self.field = field
        self.naming = FeatureNaming("wordpiece", vocab if vocab is not None else Vocabulary())
        self.bulk_settings = bulk or BulkSettings()
        self.vocab_size = len(self.naming.vocab)
        self._exists = False
        self._dirty = False
        self.dense_field = "dense"
        self._dense_dim: int | None = None
        self._checked = False  # the node answered as Elasticsearch

    # ----------------------------------------------------------------------------- index management

    def create(self, overwrite: bool = False, dense_dim: int | None = None, shards: int | None = None,
               replicas: int | None = None) -> bool:
        """Create the index from ``mappings/es_sparse_vector.json``; False when it exists (and is kept).

        `dense_dim` adds the ``dense_vector`` field of ``mappings/es_dense_vector.json``."""
        exists = self.exists()
        if exists and not overwrite:
            self._check_field("sparse_vector")
            return False
        if exists:
            self.client.indices.delete(index=self.index_name)
        body = load_definition("mappings", "es_sparse_vector.json")
        body.pop("_comment", None)
        props = body["mappings"]["properties"]
        if self.field != "sparse":
            props[self.field] = props.pop("sparse")
        if dense_dim is not None:
            dense = copy.deepcopy(load_definition("mappings", "es_dense_vector.json")["properties"]["dense"])
            dense["dims"] = int(dense_dim)
            props[self.dense_field] = dense
        shard_settings(body["settings"]["index"], shards, replicas)
        self.client.indices.create(index=self.index_name, body=body)
        self._exists, self._dirty, self._dense_dim = True, False, dense_dim
        return True

    def exists(self) -> bool:
        """Whether the index is on the node; the first call also checks that the node is Elasticsearch
        (a HEAD on an OpenSearch node would only say "no such index")."""
        if not self._checked:
            self._read_call(self.client.cluster.health)  # elasticsearch-py's product check runs on this answer
            self._checked = True
        return super().exists()

    def refresh(self, timeout: float = 600.0) -> None:
        self.client.options(request_timeout=timeout).indices.refresh(index=self.index_name)
        self._dirty = False

    def _read_call(self, call, *args, **kwargs):
        return read_with_retries(self.client, call, *args, **kwargs)

    # ----------------------------------------------------------------------------- searching

    def request(self, query: SparseVector, k: int = 10, explain: bool = False, mode: str = "exact",
                method_parameters: Mapping[str, Any] | None = None) -> tuple[dict, SparseVector, float]:
        """(search body, the query as sent, its weight scale 1.0): see the module docstring for `mode`."""
        self._check_mode(mode)
        clause = sparse_clause(self.naming.to_features(query), self.field, mode != "exact", method_parameters)
        body = {"size": k, "query": clause, "track_total_hits": False,
                "_source": {"excludes": [self.dense_field]} if explain else {"excludes": [self.field, self.dense_field]}}
        return body, query, 1.0

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"Unknown search mode {mode!r} for Elasticsearch; choose one of "
                                    f"{', '.join(SEARCH_MODES)} (sparse ANN is OpenSearch's seismic index).")

    def _search_reranked(self, query: SparseVector, q: np.ndarray, k: int, candidates: int, explain: bool,
                         mode: str = "exact", method_parameters: Mapping[str, Any] | None = None) -> list[Hit]:
        """The sparse top `candidates` with their dense vectors in one request, ordered by cosine."""
        if not self._read():
            return []
        body, sent, scale = self.request(query, candidates, explain, mode, method_parameters)
        body["_source"] = {"excludes": [] if explain else [self.field]}
        response = self._read_call(self.client.search, index=self.index_name, body=body)
        rows = response["hits"]["hits"]
        if not rows:
            return []
        vectors = np.asarray([row["_source"][self.dense_field] for row in rows], dtype=np.float32)
        return rescore(self._hits(response, sent, scale, explain), vectors @ q, "dense")[:k]

    def _dense_search(self, q: np.ndarray, depth: int) -> dict[str, float]:
        """The engine's ``knn`` top `depth`: {id: (1 + cos) / 2} (Elasticsearch's cosine score)."""
        if not self._read():
            return {}
        knn = {"field": self.dense_field, "query_vector": q.tolist(), "k": int(depth),
               "num_candidates": max(int(depth), 100)}
        response = self._read_call(self.client.search, index=self.index_name,
                                   body={"size": int(depth), "knn": knn, "_source": False})
        return {row["_id"]: float(row["_score"]) for row in response["hits"]["hits"]}
