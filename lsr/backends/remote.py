"""What the OpenSearch and Elasticsearch indexes share: one index of sparse vectors (and optional dense
vectors) on a search engine's node, written through streaming bulk and read back by id.

`RemoteIndex` holds the client, the index name, the field names, the feature naming and the bulk
settings; a subclass says how to create the index (its mapping), how to refresh, how to read with retries,
and gives its client's `Engine` (`lsr.backends.bulk`). Both engines' Python clients take the same calls
for everything here (``indices.*``, ``get``, ``mget``, ``count``, the bulk helpers).

Writes follow the backend contract (`lsr.backends.base`): `index()` creates a missing index and sends the
documents, without touching index settings or refreshing; the first read after writes refreshes once (so
a search sees what was indexed, as in the embedded index), and `commit()` refreshes explicitly. Large
loads go through `bulk()` / `stream()` or the `loading()` context, which switch refreshes (and per-request
translog fsyncs) off once for the whole load.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from lsr.backends.base import Hit, IndexReport, SparseBackend
from lsr.backends.bulk import BulkSettings, DocResult, Document, Engine, stream_bulk, summarise
from lsr.backends.dense_rows import normalise_rows
from lsr.backends.features import FeatureNaming
from lsr.backends.validate import MIN_WEIGHT, check_ids
from lsr.backends.filters import Filter, check_filter
from lsr.backends.remote_filter import filtered
from lsr.errors import InvalidInputError, ServiceError
from lsr.sparse import SparseBatch, SparseVector

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

TOP_LEVEL_METADATA = ("path", "caption", "collection")  # indexed fields; other metadata goes under "meta"


def shard_settings(settings: dict, shards: int | None, replicas: int | None) -> None:
    """Put a new index's primary shards and replicas (checked) into its ``settings.index``."""
    for key, value in (("number_of_shards", shards), ("number_of_replicas", replicas)):
        if value is not None:
            if value < (1 if key == "number_of_shards" else 0):
                raise InvalidInputError(f"{key} must be >= {1 if key == 'number_of_shards' else 0}, got {value}.")
            settings[key] = int(value)


class RemoteIndex(SparseBackend):
    """The engine-neutral part of an index on a search engine node (see the module docstring)."""

    ENGINE: Engine
    DENSE_DIM_KEY = "dimension"  # the dense field's mapping key that holds its dimension
    client: Any
    index_name: str
    field: str
    naming: FeatureNaming
    bulk_settings: BulkSettings
    _exists: bool
    _dirty: bool
    dense_field: str
    _dense_dim: int | None

    # ----------------------------------------------------------------------------- for subclasses

    def create(self, overwrite: bool = False, **options: Any) -> bool:
        raise NotImplementedError

    def refresh(self, timeout: float = 600.0) -> None:
        raise NotImplementedError

    def request(self, query: SparseVector, k: int = 10, explain: bool = False, mode: str = "exact",
                method_parameters: Mapping[str, Any] | None = None) -> tuple[dict, SparseVector, float]:
        """(search body, the query as sent, its weight scale) of a sparse query."""
        raise NotImplementedError

    def _check_mode(self, mode: str) -> None:
        raise NotImplementedError

    def _check_options(self, options: Mapping[str, Any]) -> None:
        """The search options an engine takes: `mode` (checked by `_check_mode`) and `method_parameters`."""
        unknown = set(options) - {"mode", "method_parameters", "filter"}
        if unknown:
            raise InvalidInputError(f"Unknown search option(s) {', '.join(sorted(unknown))}; {type(self).__name__} "
                                    "takes mode, method_parameters and filter.")
        if check_filter(options.get("filter")) and options.get("mode") == "ann":
            raise InvalidInputError("A filter works with exact and two_phase search, not sparse ANN.")
        self._check_mode(options.get("mode", "exact"))

    def _read_call(self, call, *args, **kwargs):
        """Run a read (search, exists ...) with the engine's retries and clear TLS / credentials errors."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------- index management

    def _check_field(self, wanted: str) -> None:
        """Refuse an existing index whose sparse field is not of type `wanted`."""
        mapping = self.client.indices.get_mapping(index=self.index_name)[self.index_name]["mappings"]
        found = mapping.get("properties", {}).get(self.field, {}).get("type")
        if found != wanted:
            raise InvalidInputError(f"Index {self.index_name!r} exists with field {self.field!r} of type {found!r}, "
                                    f"not {wanted!r}; pick another index name or create(overwrite=True).")

    def drop(self) -> None:
        self.client.indices.delete(index=self.index_name, ignore_unavailable=True)
        self._exists = self._dirty = False

    def commit(self) -> None:
        """Refresh, when anything was written (the node has already made acknowledged writes durable)."""
        if self._dirty:
            self.refresh()

    def close(self) -> None:
        self.client.close()

    def _ensure_exists(self, dense_dim: int | None = None) -> None:
        """Create the index from its mapping on the first write to an index that is not there."""
        if not self._exists:
            if self.create(dense_dim=dense_dim):
                log.info("created %s index %r", self.ENGINE.name, self.index_name)
            self._exists = True

    def exists(self) -> bool:
        """Whether the index is on the cluster (a read: retried, TLS and credentials failures explained)."""
        return bool(self._read_call(self.client.indices.exists, index=self.index_name))

    def _read(self) -> bool:
        """Before a read: refresh once after writes; False when the index does not exist."""
        if self._dirty:
            self.refresh()
        return self._exists or self.exists()

    def provenance(self) -> dict[str, Any] | None:
        return self._meta().get("lsr") if self._read() else None

    def record_provenance(self, record: Mapping[str, Any]) -> None:
        self._put_meta("lsr", {**record, "naming": self.naming.naming})

    def _meta(self) -> dict[str, Any]:
        return self.client.indices.get_mapping(index=self.index_name)[self.index_name]["mappings"].get("_meta", {})

    def _put_meta(self, key: str, value: Any) -> None:
        """Set one key of the mapping's ``_meta`` (a mapping update replaces ``_meta`` whole: merge first)."""
        self._ensure_exists()
        self.client.indices.put_mapping(index=self.index_name, body={"_meta": {**self._meta(), key: value}})

    @property
    def dense_dim(self) -> int | None:
        if self._dense_dim is None and (self._exists or self.client.indices.exists(index=self.index_name)):
            mapping = self.client.indices.get_mapping(index=self.index_name)[self.index_name]["mappings"]
            self._dense_dim = mapping.get("properties", {}).get(self.dense_field, {}).get(self.DENSE_DIM_KEY)
        return self._dense_dim

    # ----------------------------------------------------------------------------- writing

    def _source(self, doc_id: str, vector: SparseVector, meta: Mapping[str, Any] | None) -> dict:
        keep = vector.weights >= MIN_WEIGHT  # the engines reject sub-normal values; they score ~0 anyway
        if not keep.all():
            vector = SparseVector(vector.ids[keep], vector.weights[keep])
        source: dict[str, Any] = {"id": doc_id, self.field: self.naming.to_features(vector)}
        rest = {}
        for key, value in (meta or {}).items():
            if key in TOP_LEVEL_METADATA:
                source[key] = value
            else:
                rest[key] = value
        if rest:
            source["meta"] = rest
        return source

    def stream(self, docs: Iterable[Document]) -> Iterator[DocResult]:
        """Bulk-index ``(id, SparseVector, metadata)`` tuples; yields one result per document.

        Documents are checked with the contract's rules (`lsr.backends.validate`; a failing one is
        yielded as failed). Refreshes (and per-request translog fsyncs) are switched off during the
        load and restored after; ids repeated within one stream overwrite (the last one wins).
        """
        with self.loading():
            yield from stream_bulk(self.ENGINE, self.client, self.index_name, docs, self._source, self.bulk_settings,
                                   self.vocab_size)

    def bulk(self, docs: Iterable[Document], progress: bool = True, total: int | None = None) -> IndexReport:
        """Bulk-index a stream of documents and return the summary (progress bar with docs/s)."""
        report = summarise(self.stream(docs), progress=progress, total=total)
        if report.failed:
            log.warning("bulk: %d documents failed, e.g. %s", len(report.failed), next(iter(report.failed.items())))
        return report

    def _index(self, ids: list[str], vectors: SparseBatch, metadata: list[dict[str, Any] | None],
               dense: "np.ndarray | None" = None) -> IndexReport:
        if dense is not None and self.dense_dim is None and (self._exists or self.client.indices.exists(
                index=self.index_name)):
            raise InvalidInputError(f"{self.ENGINE.name} index {self.index_name!r} exists without a dense field (dense "
                                    "vectors are fixed when an index is created): drop it, or index into a new name.")
        self._ensure_exists(dense.shape[1] if dense is not None else None)
        self._dirty = True
        docs = ((doc_id, vectors[i], metadata[i]) for i, doc_id in enumerate(ids))
        to_source = self._source
        if dense is not None:
            rows = {doc_id: normalise_rows(dense[i:i + 1])[0].tolist() for i, doc_id in enumerate(ids)}

            def to_source(doc_id: str, vector: SparseVector, meta: Mapping[str, Any] | None) -> dict:
                return {**self._source(doc_id, vector, meta), self.dense_field: rows[doc_id]}

        return summarise(stream_bulk(self.ENGINE, self.client, self.index_name, docs, to_source, self.bulk_settings,
                                     self.vocab_size), progress=len(ids) > 10_000, total=len(ids))

    @contextmanager
    def loading(self) -> Iterator["RemoteIndex"]:
        """A load: no refreshes (and, with `BulkSettings.async_translog`, no fsync per request) during a load.

        The settings found before are restored afterwards, and the index is refreshed once. Wrap many
        `index()` calls of one load (an incremental folder indexer's batches) in it. Asynchronous translog
        durability is safe because loads are idempotent: documents that a crashed node acknowledged but had
        not yet fsynced are sent again by re-running the same load.
        """
        self._ensure_exists()
        self._dirty = True
        load = {"refresh_interval": "-1"}
        if self.bulk_settings.async_translog:
            load["translog.durability"] = "async"
        names = ",".join(f"index.{key}" for key in load)
        current = self.client.indices.get_settings(index=self.index_name, name=names, flat_settings=True)
        found = current.get(self.index_name, {}).get("settings", {})  # {"index.refresh_interval": ...}
        # A value equal to ours is left over from a load that died with the node: restore the default.
        previous = {key: (None if found.get(f"index.{key}") in (None, value) else found[f"index.{key}"])
                    for key, value in load.items()}
        self.client.indices.put_settings(index=self.index_name, body={"index": load})
        try:
            yield self
        finally:
            try:
                self.client.indices.put_settings(index=self.index_name, body={"index": previous})
            except Exception as exc:  # the node may be down: say so, keep the original error
                log.warning("could not restore %s on %s: %s", previous, self.index_name, exc)

    def delete(self, ids: Sequence[str]) -> int:
        ids = check_ids(ids)
        if not ids or not self._read():
            return 0
        self._dirty = True
        actions = ({"_op_type": "delete", "_index": self.index_name, "_id": i} for i in ids)
        deleted = 0
        for ok, item in self.ENGINE.helpers().streaming_bulk(self.client, actions, raise_on_error=False):
            deleted += int(ok and item["delete"].get("result") == "deleted")
        return deleted

    # ----------------------------------------------------------------------------- reading

    def count(self) -> int:
        if not self._read():
            return 0
        return int(self.client.count(index=self.index_name)["count"])

    def _get_source(self, doc_id: str) -> dict:
        if isinstance(doc_id, str) and doc_id:
            try:
                return self.client.get(index=self.index_name, id=doc_id)["_source"]
            except self.ENGINE.not_found():
                pass
        raise KeyError(f"Document {doc_id!r} is not in the index.")

    def get(self, doc_id: str) -> SparseVector:
        """The document's vector as sent (the node keeps fewer significant bits of each weight for scoring)."""
        return self.naming.from_features(self._get_source(doc_id)[self.field])

    def metadata(self, doc_id: str) -> dict[str, Any]:
        source = self._get_source(doc_id)
        return {k: v for k, v in {**source.pop("meta", {}), **source}.items()
                if k not in ("id", self.field, self.dense_field)}

    def __contains__(self, doc_id: object) -> bool:
        try:
            self._get_source(doc_id)  # type: ignore[arg-type]
        except KeyError:
            return False
        return True

    def dense_vectors(self, ids: Sequence[str]) -> "np.ndarray":
        import numpy as np

        if self.dense_dim is None:
            return super().dense_vectors(ids)
        self._read()
        docs = self.client.mget(index=self.index_name, body={"ids": list(ids)},
                                _source_includes=[self.dense_field])["docs"]
        for doc_id, doc in zip(ids, docs):
            if not doc.get("found"):
                raise KeyError(f"No document {doc_id!r} in {self.ENGINE.name} index {self.index_name!r}.")
        return np.asarray([d["_source"][self.dense_field] for d in docs], dtype=np.float32).reshape(len(ids), -1)

    def _search(self, query: SparseVector, k: int, explain: bool, mode: str = "exact",
                method_parameters: Mapping[str, Any] | None = None, filter: Filter | None = None) -> list[Hit]:
        """Top-k documents; `mode` and `method_parameters` are the engine's (its `request`)."""
        if not self._read():
            return []
        body, sent, scale = self.request(query, k, explain, mode, method_parameters)
        body["query"] = filtered(self, body["query"], filter)  # `lsr.backends.remote_filter`
        response = self._read_call(self.client.search, index=self.index_name, body=body)
        return self._hits(response, sent, scale, explain)

    def _search_batch(self, queries: list[SparseVector], k: int, explain: bool, mode: str = "exact",
                      method_parameters: Mapping[str, Any] | None = None, chunk: int = 64,
                      filter: Filter | None = None) -> list[list[Hit]]:
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
                body["query"] = filtered(self, body["query"], filter)
                lines += [{"index": self.index_name}, body]
                sent_queries.append((sent, scale))
            responses = iter(self._read_call(self.client.msearch, body=lines)["responses"]) if lines else iter(())
            sent_it = iter(sent_queries)
            for q in vectors[start:start + chunk]:
                if q.nnz == 0:
                    out.append([])
                    continue
                response = next(responses)
                if "error" in response:
                    raise ServiceError(f"{self.ENGINE.name} rejected a query: {response['error']}")
                out.append(self._hits(response, *next(sent_it), explain))
        return out

    def _hits(self, response: dict, sent: SparseVector | None, scale: float, explain: bool) -> list[Hit]:
        """Hits in model units: scores divided by the query's weight scale; with `explain`, each token's
        contribution from the document's features (returned in ``_source``)."""
        hits = []
        q = {int(t): float(w) / scale for t, w in zip(sent.ids, sent.weights)} if sent is not None else {}
        for h in response["hits"]["hits"]:
            source = dict(h.get("_source") or {})
            features = source.pop(self.field, None)
            source.pop("id", None)
            source.pop(self.dense_field, None)
            meta = {**source.pop("meta", {}), **source}
            contributions = None
            if explain and features is not None:
                doc = self.naming.from_features(features)
                contributions = {int(t): q[int(t)] * float(w) for t, w in zip(doc.ids, doc.weights) if int(t) in q}
            hits.append(Hit(id=h["_id"], score=float(h["_score"]) / scale, metadata=meta, contributions=contributions))
        return hits
