"""Sparse query -> OpenSearch query body, within the engine's limits.

Rules (applied in this order):
1. an optional prune (``top_k``, ``max_ratio``, ``alpha_mass``, ``abs_value``; see `lsr.prune`);
2. the clause limit: more than ``max_clauses`` (1,024) tokens keeps the heaviest ``max_clauses``
   (``top_k``), so long queries are pruned, never rejected;
3. the weight range: ``neural_sparse`` accepts query weights in (0, 64]. A query whose heaviest weight
   exceeds 64 is *scaled* by 64 / max (never clipped), which leaves the ranking unchanged; returned
   scores are divided by the same factor so they stay in model units.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsr.backends.opensearch.features import FeatureNaming
from lsr.errors import InvalidInputError
from lsr.prune import cap_terms, prune
from lsr.sparse import SparseVector

MAX_QUERY_WEIGHT = 64.0
QUERY_TYPES = ("neural_sparse", "rank_feature")


@dataclass
class QueryRules:
    """How a sparse query is fitted to OpenSearch; the defaults are the engine's limits."""

    prune_type: str | None = None
    prune_value: float | None = None
    max_clauses: int = 1024
    max_weight: float = MAX_QUERY_WEIGHT

    def apply(self, query: SparseVector) -> tuple[SparseVector, float]:
        """The query to send and the factor its weights were multiplied by."""
        if self.prune_type is not None:
            if self.prune_value is None:
                raise InvalidInputError(f"Prune type {self.prune_type!r} needs a prune value.")
            query = prune(query, self.prune_type, self.prune_value)
        query = cap_terms(query, self.max_clauses)
        if query.nnz == 0:
            return query, 1.0
        heaviest = float(query.weights.max())
        scale = min(1.0, self.max_weight / heaviest)
        if scale < 1.0:
            query = SparseVector(query.ids, query.weights * scale)
        return query, scale


def build_query(query: SparseVector, naming: FeatureNaming, field: str, query_type: str = "neural_sparse",
                method_parameters: dict | None = None) -> dict:
    """The ``query`` clause: ``neural_sparse`` with ``query_tokens``, or a bool of linear ``rank_feature``s.

    `method_parameters` (``k``, ``top_n``, ``heap_factor``) selects sparse ANN on a seismic field.
    """
    features = naming.to_features(query)
    if query_type == "neural_sparse":
        body: dict = {"query_tokens": features}
        if method_parameters:
            body["method_parameters"] = dict(method_parameters)
        return {"neural_sparse": {field: body}}
    if query_type == "rank_feature":
        if method_parameters:
            raise InvalidInputError("Sparse ANN (method_parameters) needs the neural_sparse query type.")
        clauses = [{"rank_feature": {"field": f"{field}.{name}", "linear": {}, "boost": w}}
                   for name, w in features.items()]
        return {"bool": {"should": clauses}}
    raise InvalidInputError(f"Unknown query type {query_type!r}; choose one of {', '.join(QUERY_TYPES)}.")
