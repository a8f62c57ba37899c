"""Re-ranking and hybrid search inside OpenSearch: the request bodies, built from the files in
``mappings/`` and ``pipelines/``.

- Dense vectors live in a ``knn_vector`` field (``mappings/dense_knn.json``, Lucene HNSW, cosinesimil)
  of the same documents as the sparse field.
- Two-stage re-ranking is a ``rescore`` over the sparse top N (``window_size``) whose query is a
  ``script_score`` with the k-NN plugin's Painless ``cosineSimilarity`` (+1, since scores must not be
  negative); ``query_weight`` 0 makes the final score the cosine alone. Stage 1 is the engine's.
- Hybrid search is a ``hybrid`` query of ``neural_sparse`` and ``knn`` (``k`` = depth, and the hybrid
  query's ``pagination_depth`` = depth, so each sub-query contributes its top `depth`), fused by the
  search pipeline of ``pipelines/hybrid_normalization.json`` or ``pipelines/hybrid_rrf.json``, sent
  with the request. The hybrid query cannot sit inside ``function_score`` / ``constant_score`` (3.6).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lsr.backends.fusion import Fusion
from lsr.backends.opensearch.client import load_definition, read_with_retries
from lsr.errors import InvalidInputError

if TYPE_CHECKING:
    from lsr.backends.base import Hit
    from lsr.sparse import SparseVector

COSINE_SCRIPT = "cosineSimilarity(params.query_value, doc[params.field]) + 1.0"


def dense_mapping(dim: int, field: str = "dense") -> tuple[dict, dict]:
    """(index settings, field properties) that add a `dim`-d ``knn_vector`` field."""
    definition = load_definition("mappings", "dense_knn.json")
    prop = copy.deepcopy(definition["properties"]["dense"])
    prop["dimension"] = int(dim)
    return definition["settings"], {field: prop}


def rescore_clause(dense_query: np.ndarray, field: str, window: int) -> dict:
    """The ``rescore`` section: cosine with `dense_query` over the top `window` of stage 1."""
    script = {"source": COSINE_SCRIPT, "params": {"query_value": dense_query.tolist(), "field": field}}
    return {"window_size": int(window), "query": {
        "query_weight": 0.0, "rescore_query_weight": 1.0,
        "rescore_query": {"script_score": {"query": {"match_all": {}}, "script": script}}}}


def hybrid_query(sparse_clause: dict | None, dense_query: np.ndarray, field: str, depth: int) -> dict:
    """A ``hybrid`` query of the sparse clause and a dense ``knn`` clause, each with its top `depth`."""
    knn = {"knn": {field: {"vector": dense_query.tolist(), "k": int(depth)}}}
    queries = [sparse_clause if sparse_clause is not None else {"match_none": {}}, knn]
    return {"hybrid": {"queries": queries, "pagination_depth": int(depth)}}


def hybrid_pipeline(fusion: Fusion, explain: bool = False) -> dict:
    """The fusion pipeline file for `fusion`, with its technique and weights filled in."""
    name = "hybrid_rrf.json" if fusion.technique == "rrf" else "hybrid_normalization.json"
    definition = load_definition("pipelines", name)
    definition.pop("description", None)
    if not explain:
        definition.pop("response_processors", None)
    for processor in definition["phase_results_processors"]:
        if "normalization-processor" in processor:
            body = processor["normalization-processor"]
            body["normalization"]["technique"] = fusion.technique
            body["combination"]["parameters"]["weights"] = list(fusion.weights)
        else:
            processor["score-ranker-processor"]["combination"]["rank_constant"] = fusion.rank_constant
    return definition


def hybrid_parts(explanation: dict | None, scale: float) -> dict[str, float] | None:
    """Each part's raw score (sparse in model units, dense as the k-NN score) from a hybrid hit's
    explanation (``hybrid_score_explanation``); a part that did not return the hit is 0."""
    if not explanation:
        return None
    parts = {"sparse": 0.0, "dense": 0.0}
    for detail in explanation.get("details", []):
        inner = (detail.get("details") or [{}])[0]
        if "within top" in inner.get("description", ""):
            parts["dense"] = float(inner.get("value", 0.0))
        else:
            parts["sparse"] = float(inner.get("value", 0.0)) / scale
    return parts


class OpenSearchModes:
    """The scoring modes of `OpenSearchIndex` (mixed in; uses its client, request and hit parsing)."""

    def _search_reranked(self, query: SparseVector, q: np.ndarray, k: int, candidates: int, explain: bool,
                         mode: str = "exact", method_parameters: Mapping[str, Any] | None = None) -> list[Hit]:
        """In the engine: the sparse top `candidates`, rescored by cosine (`lsr.backends.opensearch.modes`)."""
        self._exact_only(mode, "re-ranking")
        if not self._read():
            return []
        body, sent, scale = self.request(query, k, explain)
        body["rescore"] = rescore_clause(q, self.dense_field, candidates)
        response = read_with_retries(self.client, self.client.search, index=self.index_name, body=body)
        hits = self._hits(response, sent, scale, explain)
        scores = [float(raw["_score"]) - 1.0 for raw in response["hits"]["hits"]]  # the script adds 1 (never < 0)
        return [replace(hit, score=score, stages={"dense": score}) for hit, score in zip(hits, scores)]

    def _search_hybrid(self, query: SparseVector, q: np.ndarray, k: int, fusion: Fusion, depth: int, explain: bool,
                       mode: str = "exact", method_parameters: Mapping[str, Any] | None = None) -> list[Hit]:
        """In the engine: a hybrid query fused by the pipeline file (`lsr.backends.opensearch.modes`)."""
        self._exact_only(mode, "hybrid search")
        if not self._read():
            return []
        body, sent, scale = self.request(query, k, explain) if query.nnz else ({"size": k}, None, 1.0)
        sparse_clause = body.get("query")
        body["query"] = hybrid_query(sparse_clause, q, self.dense_field, depth)
        body["search_pipeline"] = hybrid_pipeline(fusion, explain)
        if explain:
            body["explain"] = True  # the pipeline's hybrid_score_explanation fills each hit's parts
        response = read_with_retries(self.client, self.client.search, index=self.index_name, body=body)
        hits = self._hits(response, sent, scale, explain)
        return [replace(hit, score=float(raw["_score"]),  # fused scores carry no query-weight scale
                        stages=hybrid_parts(raw.get("_explanation"), scale) if explain else hit.stages)
                for hit, raw in zip(hits, response["hits"]["hits"])]

    @staticmethod
    def _exact_only(mode: str, what: str) -> None:
        if mode != "exact":
            raise InvalidInputError(f"{what} runs over exact sparse search; mode={mode!r} is not supported with it.")
