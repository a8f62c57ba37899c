"""Searching an `OpenSearchIndex`: request bodies (exact, two-phase, seismic ANN), single and _msearch
queries, words through a registered model, and hits in model units.

A mixin of `OpenSearchIndex` (`lsr.backends.opensearch.index`), which holds the client, the index name,
the field, the feature naming and the query rules it reads.
"""

from __future__ import annotations

from typing import Any, Mapping

from lsr.backends.base import Hit
from lsr.backends.opensearch.client import read_with_retries, two_phase_pipeline
from lsr.backends.opensearch.query import build_query
from lsr.backends.opensearch.text_query import search_text as search_words
from lsr.errors import InvalidInputError
from lsr.sparse import SparseVector

SEARCH_MODES = ("exact", "two_phase", "ann")


class OpenSearchSearching:
    """`search` / `search_batch` of the backend contract for `OpenSearchIndex`."""

    def request(self, query: SparseVector, k: int = 10, explain: bool = False, mode: str = "exact",
                method_parameters: Mapping[str, Any] | None = None) -> tuple[dict, SparseVector, float]:
        """(search body, the query as sent, its weight scale); useful to see what is sent.

        `method_parameters` tune the mode: seismic's ``top_n`` / ``heap_factor`` for "ann", the
        pipeline's ``prune_ratio`` / ``expansion_rate`` / ... for "two_phase".
        """
        self._check_mode(mode)
        sent, scale = self.rules.apply(query)
        ann = None
        if mode == "ann":
            ann = {"k": k, "top_n": 10, "heap_factor": 1.0, **(method_parameters or {})}
        body = {"size": k, "query": build_query(sent, self.naming, self.field, self.query_type, ann)}
        body["_source"] = {"excludes": [self.dense_field]} if explain else {"excludes": [self.field, self.dense_field]}
        if mode == "two_phase":  # the pipeline file, sent with the request (works in _msearch too)
            body["search_pipeline"] = two_phase_pipeline(method_parameters)
        return body, sent, scale

    def _check_options(self, options: Mapping[str, Any]) -> None:
        unknown = set(options) - {"mode", "method_parameters"}
        if unknown:
            raise InvalidInputError(f"Unknown search option(s) {', '.join(sorted(unknown))}; OpenSearchIndex takes "
                             "mode and method_parameters.")
        self._check_mode(options.get("mode", "exact"))

    def _check_mode(self, mode: str) -> None:
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"Unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}.")
        if mode == "ann" and self.kind != "seismic":
            raise InvalidInputError("Sparse ANN needs an index of kind 'seismic'.")

    def _search(self, query: SparseVector, k: int, explain: bool, mode: str = "exact",
                method_parameters: Mapping[str, Any] | None = None) -> list[Hit]:
        """Top-k documents; `mode` is "exact", "two_phase" (pipeline) or "ann" (seismic index)."""
        if not self._read():
            return []
        body, sent, scale = self.request(query, k, explain, mode, method_parameters)
        response = read_with_retries(self.client, self.client.search, index=self.index_name, body=body)
        return self._hits(response, sent, scale, explain)

    def _search_batch(self, queries: list[SparseVector], k: int, explain: bool, mode: str = "exact",
                      method_parameters: Mapping[str, Any] | None = None, chunk: int = 64) -> list[list[Hit]]:
        """Top-k for each query through _msearch, `chunk` queries per request."""
        out: list[list[Hit]] = []
        vectors = queries
        if not self._read():
            return [[] for _ in vectors]
        for start in range(0, len(vectors), chunk):
            lines, sent_queries = [], []
            for q in vectors[start:start + chunk]:
                if q.nnz == 0:
                    continue
                body, sent, scale = self.request(q, k, explain, mode, method_parameters)
                lines += [{"index": self.index_name}, body]
                sent_queries.append((sent, scale))
            responses = iter(read_with_retries(self.client, self.client.msearch, body=lines)["responses"]) if lines else iter(())
            sent_it = iter(sent_queries)
            for q in vectors[start:start + chunk]:
                if q.nnz == 0:
                    out.append([])
                    continue
                response = next(responses)
                if "error" in response:
                    raise RuntimeError(f"OpenSearch rejected a query: {response['error']}")
                out.append(self._hits(response, *next(sent_it), explain))
        return out

    def search_text(self, text: str, k: int = 10, model_id: str | None = None, mode: str = "exact",
                    method_parameters: Mapping[str, Any] | None = None) -> list[Hit]:
        """Words in, hits out: OpenSearch encodes `text` with the registered remote model (`text_query`)."""
        return search_words(self, text, k, model_id, mode, method_parameters)

    def _hits(self, response: dict, sent: SparseVector | None, scale: float, explain: bool) -> list[Hit]:
        """Hits in model units: scores divided by the query's weight scale."""
        hits = []
        q = {int(t): float(w) / scale for t, w in zip(sent.ids, sent.weights)} if sent is not None else {}
        for h in response["hits"]["hits"]:
            source = dict(h.get("_source") or {})
            features = source.pop(self.field, None)
            source.pop("id", None)
            meta = {**source.pop("meta", {}), **source}
            contributions = None
            if explain and features is not None:
                doc = self.naming.from_features(features)
                contributions = {int(t): q[int(t)] * float(w) for t, w in zip(doc.ids, doc.weights) if int(t) in q}
            hits.append(Hit(id=h["_id"], score=float(h["_score"]) / scale, metadata=meta, contributions=contributions))
        return hits
