"""Set-valued documents in OpenSearch: each member's sparse vector in a ``nested`` field
(``mappings/sparse_sets.json``), searched with a ``nested`` query around ``neural_sparse`` whose
``score_mode`` (max / sum / avg over the matching members) aggregates them, as `EmbeddedSetIndex` does.

Query-side sets: ``dis_max`` of one nested clause per phrasing (``max``), a ``bool`` ``should`` of them
(``sum``), or that sum divided by the number of phrasings (``avg``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from lsr.backends.base import Hit, IndexReport
from lsr.backends.opensearch.bulk import ENGINE
from lsr.backends.opensearch.client import connect, load_definition, read_with_retries
from lsr.backends.opensearch.features import FeatureNaming
from lsr.backends.opensearch.index import TOP_LEVEL_METADATA
from lsr.backends.opensearch.query import QueryRules, build_query
from lsr.backends.set_base import SetIndex
from lsr.backends.validate import SCORE_MODES, DocumentVector, accept_sets, check_k, prepare_query_set
from lsr.errors import InvalidInputError
from lsr.sparse import SparseBatch, SparseVector
from lsr.vocab import Vocabulary

FIELD = "members"


class OpenSearchSetIndex(SetIndex):
    """One OpenSearch index of set-valued documents (see the module docstring); the Elasticsearch set index
    (`lsr.backends.elasticsearch.sets`) changes the client, the mapping file and the member clause."""

    MAPPING = "sparse_sets.json"
    ENGINE = ENGINE

    def __init__(self, client_or_url, index: str = "lsr-sets", vocab: Vocabulary | None = None,
                 rules: QueryRules | None = None):
        self.client = connect(client_or_url)
        self.index_name = index
        self.naming = FeatureNaming("wordpiece", vocab if vocab is not None else Vocabulary())
        self.vocab_size = len(self.naming.vocab)
        self.rules = rules or QueryRules()

    def create(self, overwrite: bool = False) -> bool:
        exists = self.client.indices.exists(index=self.index_name)
        if exists and not overwrite:
            return False
        if exists:
            self.client.indices.delete(index=self.index_name)
        body = load_definition("mappings", self.MAPPING)
        body.pop("_comment", None)
        self.client.indices.create(index=self.index_name, body=body)
        return True

    def drop(self) -> None:
        self.client.indices.delete(index=self.index_name, ignore_unavailable=True)

    def index(self, ids: Sequence[str], member_vectors: Sequence[SparseBatch | Sequence[DocumentVector]],
              metadata: Sequence[Mapping[str, Any] | None] | None = None) -> IndexReport:
        """Add or replace set documents (the same rules as `EmbeddedSetIndex.index`); refreshes after."""
        helpers = self.ENGINE.helpers()
        accepted = accept_sets(ids, member_vectors, metadata, self.vocab_size)
        self.create()
        actions = ({"_op_type": "index", "_index": self.index_name, "_id": doc_id,
                    "_source": self._source(doc_id, members, meta)}
                   for doc_id, members, meta in zip(accepted.ids, accepted.members, accepted.metadata))
        report = IndexReport(failed=dict(accepted.failed))
        for ok, item in helpers.streaming_bulk(self.client, actions, chunk_size=500, raise_on_error=False):
            info = next(iter(item.values()))
            if ok:
                report.indexed += 1
            else:
                report.failed[str(info.get("_id"))] = f"HTTP {info.get('status')}: {info.get('error')}"
        self.client.indices.refresh(index=self.index_name)
        return report

    def _source(self, doc_id: str, members: SparseBatch, meta: Mapping[str, Any] | None) -> dict:
        source: dict[str, Any] = {"id": doc_id, FIELD: [{"sparse": self.naming.to_features(m)} for m in members]}
        rest = {k: v for k, v in (meta or {}).items() if k not in TOP_LEVEL_METADATA}
        source.update({k: v for k, v in (meta or {}).items() if k in TOP_LEVEL_METADATA})
        if rest:
            source["meta"] = rest
        return source

    def count(self) -> int:
        if not self.client.indices.exists(index=self.index_name):
            return 0
        return int(self.client.count(index=self.index_name)["count"])

    def delete(self, ids: Sequence[str]) -> int:
        helpers = self.ENGINE.helpers()
        actions = ({"_op_type": "delete", "_index": self.index_name, "_id": i} for i in ids)
        deleted = sum(ok and item["delete"].get("result") == "deleted"
                      for ok, item in helpers.streaming_bulk(self.client, actions, raise_on_error=False))
        self.client.indices.refresh(index=self.index_name)
        return int(deleted)

    def request(self, queries: Sequence[SparseVector], k: int, score_mode: str, query_mode: str) -> tuple[dict, float]:
        """(search body, factor to divide scores by) for a query or a query set."""
        if score_mode not in SCORE_MODES or query_mode not in SCORE_MODES:
            raise InvalidInputError(f"Unknown score mode; choose one of {', '.join(SCORE_MODES)}.")
        clauses, scale = [], None
        for q in prepare_query_set(queries, self.vocab_size):
            sent, s = self.rules.apply(q)
            if sent.nnz == 0:
                continue
            if scale is not None and s != scale:  # phrasings must share one scale to add up
                sent, s = SparseVector(sent.ids, sent.weights * (scale / s)), scale
            scale = s
            clauses.append({"nested": {"path": FIELD, "score_mode": score_mode, "query": self._member_clause(sent)}})
        if not clauses:
            return {}, 1.0
        query = clauses[0] if len(clauses) == 1 else (
            {"dis_max": {"queries": clauses, "tie_breaker": 0.0}} if query_mode == "max"
            else {"bool": {"should": clauses}})
        divide = scale * (len(clauses) if query_mode == "avg" and len(clauses) > 1 else 1)
        return {"size": k, "query": query, "_source": {"excludes": [FIELD]}}, divide

    def _member_clause(self, sent: SparseVector) -> dict:
        """The query on one member's sparse field."""
        return build_query(sent, self.naming, f"{FIELD}.sparse")

    def _read_call(self, call, *args, **kwargs):
        return read_with_retries(self.client, call, *args, **kwargs)

    def search(self, query: SparseVector | Sequence[SparseVector], k: int = 10, score_mode: str = "max",
               query_mode: str = "sum") -> list[Hit]:
        """The top-k sets for a query, or for a query set (a list of phrasings)."""
        k = check_k(k)
        queries = [query] if isinstance(query, SparseVector) else list(query)
        body, divide = self.request(queries, k, score_mode, query_mode)
        if not body or not self._read_call(self.client.indices.exists, index=self.index_name):
            return []
        response = self._read_call(self.client.search, index=self.index_name, body=body)
        hits = []
        for h in response["hits"]["hits"]:
            source = dict(h.get("_source") or {})
            source.pop("id", None)
            hits.append(Hit(id=h["_id"], score=float(h["_score"]) / divide, metadata={**source.pop("meta", {}), **source}))
        return hits

