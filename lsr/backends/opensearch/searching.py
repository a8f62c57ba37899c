"""Searching an `OpenSearchIndex`: request bodies (exact, two-phase, seismic ANN), single and _msearch
queries, words through a registered model, and hits in model units.

A mixin of `OpenSearchIndex` (`lsr.backends.opensearch.index`), which holds the client, the index name,
the field, the feature naming and the query rules it reads.
"""

from __future__ import annotations

from typing import Any, Mapping

from lsr.backends.base import Hit
from lsr.backends.opensearch.client import two_phase_pipeline
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

    def _check_mode(self, mode: str) -> None:
        if mode not in SEARCH_MODES:
            raise InvalidInputError(f"Unknown search mode {mode!r}; choose one of {', '.join(SEARCH_MODES)}.")
        if mode == "ann" and self.kind != "seismic":
            raise InvalidInputError("Sparse ANN needs an index of kind 'seismic'.")

    def search_text(self, text: str, k: int = 10, model_id: str | None = None, mode: str = "exact",
                    method_parameters: Mapping[str, Any] | None = None) -> list[Hit]:
        """Words in, hits out: OpenSearch encodes `text` with the registered remote model (`text_query`)."""
        return search_words(self, text, k, model_id, mode, method_parameters)
