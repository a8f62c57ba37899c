"""The OpenSearch backend: a real index behind the same interface as the embedded one.

Two index kinds, both defined by files in ``mappings/`` (loaded here, never duplicated in Python):

- ``rank_features`` (default, exact): the sparse vector in a ``rank_features`` field keyed by escaped
  WordPiece tokens (see `lsr.backends.opensearch.features`), searched with ``neural_sparse`` + ``query_tokens``
  (or a bool of linear ``rank_feature`` clauses where the neural-search plugin is absent). Optional
  two-phase search through the pipeline in ``pipelines/two_phase.json``.
- ``seismic`` (approximate): a ``sparse_vector`` field keyed by token ids, searched with
  ``neural_sparse`` + ``method_parameters`` (``k``, ``top_n``, ``heap_factor``).

Writes follow the backend contract (`lsr.backends.base`): `index()` creates a missing index from its
mapping file and sends the documents, without touching index settings or refreshing; the first read
after writes refreshes once (so a search sees what was indexed, as in the embedded index), and
`commit()` refreshes explicitly. Large loads go through `bulk()` / `stream()` or the `loading()`
context, which switch refreshes (and per-request translog fsyncs) off once for the whole load.
Searching lives in `lsr.backends.opensearch.searching`, re-ranking and hybrid search in `.modes`.

Scores are sum(q * d) over shared tokens. OpenSearch keeps 9 significant bits of each ``rank_features``
value (it truncates the float's mantissa), so each stored document weight is within a relative
2^-8 below the original, and so is every score: ``exact * (1 - 2^-8) <= score <= exact``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence


from lsr.backends.base import IndexReport, SparseBackend
from lsr.backends.opensearch.features import FeatureNaming
from lsr.backends.opensearch.client import connect, load_definition, read_with_retries
from lsr.backends.opensearch.bulk import BulkSettings, DocResult, Document, stream_bulk, summarise
from lsr.backends.dense_rows import normalise_rows
from lsr.backends.opensearch.modes import OpenSearchModes, dense_mapping
from lsr.backends.opensearch.searching import OpenSearchSearching
from lsr.backends.opensearch.query import QueryRules
from lsr.sparse import SparseBatch, SparseVector
from lsr.backends.validate import MIN_WEIGHT, check_ids
from lsr.errors import InvalidInputError
from lsr.vocab import VOCAB_SIZE, Vocabulary

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

KINDS = {"rank_features": ("sparse_rank_features.json", "wordpiece"), "seismic": ("sparse_seismic.json", "id")}
RELATIVE_SCORE_BOUND = 2.0 ** -8  # 9 significant bits kept by rank_features
TOP_LEVEL_METADATA = ("path", "caption", "collection")  # indexed fields; other metadata goes under "meta"
TWO_PHASE_PIPELINE = "lsr-two-phase"


class OpenSearchIndex(OpenSearchSearching, OpenSearchModes, SparseBackend):
    """One OpenSearch index of sparse vectors; see the module docstring."""

    def __init__(self, client_or_url, index: str = "lsr", kind: str = "rank_features",
                 vocab: Vocabulary | None = None, field: str = "sparse", query_type: str = "neural_sparse",
                 rules: QueryRules | None = None, bulk: BulkSettings | None = None, vocab_size: int | None = None):
        """`vocab_size` bounds token ids on a seismic (id-named) index; a WordPiece-named one has its
        vocabulary's size."""
        if kind not in KINDS:
            raise InvalidInputError(f"Unknown index kind {kind!r}; choose one of {', '.join(KINDS)}.")
        self.client = connect(client_or_url)
        self.index_name = index
        self.kind = kind
        self.field = field
        self.query_type = query_type
        naming = KINDS[kind][1]
        self.naming = FeatureNaming(naming, vocab if vocab is not None or naming == "id" else Vocabulary())
        self.rules = rules or QueryRules()
        self.bulk_settings = bulk or BulkSettings()
        self.vocab_size = len(self.naming.vocab) if naming == "wordpiece" else int(vocab_size or VOCAB_SIZE)
        self._exists = False  # known to exist (checked or created by us)
        self._dirty = False  # written since the last refresh
        self.dense_field = "dense"
        self._dense_dim: int | None = None  # known once the index exists (read from its mapping)

    # ----------------------------------------------------------------------------- index management

    def create(self, overwrite: bool = False, method_parameters: Mapping[str, Any] | None = None,
               dense_dim: int | None = None, shards: int | None = None, replicas: int | None = None) -> bool:
        """Create the index from its mapping file; returns False when it already exists (and is kept).

        `method_parameters` overrides seismic's algorithm parameters (``n_postings``,
        ``approximate_threshold``, ``quantization_ceiling_ingest`` ...); `dense_dim` adds the
        ``knn_vector`` field of re-ranking and hybrid search (``mappings/dense_knn.json``); `shards` and
        `replicas` override the mapping file's 1 and 0 (on a cluster of several nodes: spread the index,
        and keep copies that answer when a node dies).
        """
        exists = self.exists()
        if exists and not overwrite:
            self._check_existing()
            return False
        if exists:
            self.client.indices.delete(index=self.index_name)
        body = load_definition("mappings", KINDS[self.kind][0])
        if method_parameters:
            if self.kind != "seismic":
                raise InvalidInputError("method_parameters apply to the seismic index kind only.")
            body["mappings"]["properties"][self.field]["method"]["parameters"].update(method_parameters)
        if self.field != "sparse":
            body["mappings"]["properties"][self.field] = body["mappings"]["properties"].pop("sparse")
        if dense_dim is not None:
            settings, props = dense_mapping(dense_dim, self.dense_field)
            body["settings"]["index"].update(settings["index"])
            body["mappings"]["properties"].update(props)
        for key, value in (("number_of_shards", shards), ("number_of_replicas", replicas)):
            if value is not None:
                if value < (1 if key == "number_of_shards" else 0):
                    raise InvalidInputError(f"{key} must be >= {1 if key == 'number_of_shards' else 0}, got {value}.")
                body["settings"]["index"][key] = int(value)
        self.client.indices.create(index=self.index_name, body=body)
        self._exists, self._dirty, self._dense_dim = True, False, dense_dim
        return True

    def _check_existing(self) -> None:
        mapping = self.client.indices.get_mapping(index=self.index_name)[self.index_name]["mappings"]
        found = mapping.get("properties", {}).get(self.field, {}).get("type")
        wanted = "rank_features" if self.kind == "rank_features" else "sparse_vector"
        if found != wanted:
            raise InvalidInputError(f"Index {self.index_name!r} exists with field {self.field!r} of type {found!r}, "
                             f"not {wanted!r}; pick another index name or create(overwrite=True).")

    def drop(self) -> None:
        self.client.indices.delete(index=self.index_name, ignore_unavailable=True)
        self._exists = self._dirty = False

    def refresh(self, timeout: float = 600.0) -> None:
        """Make indexed documents searchable (on a seismic index this also builds the ANN structures)."""
        self.client.indices.refresh(index=self.index_name, request_timeout=timeout)
        self._dirty = False

    def commit(self) -> None:
        """Refresh, when anything was written (the node has already made acknowledged writes durable)."""
        if self._dirty:
            self.refresh()

    def close(self) -> None:
        self.client.close()

    def _ensure_exists(self, dense_dim: int | None = None) -> None:
        """Create the index from its mapping file on the first write to an index that is not there."""
        if not self._exists:
            if self.create(dense_dim=dense_dim):
                log.info("created OpenSearch index %r (%s)", self.index_name, self.kind)
            self._exists = True

    def exists(self) -> bool:
        """Whether the index is on the cluster (a read: retried, TLS and credentials failures explained)."""
        return bool(read_with_retries(self.client, self.client.indices.exists, index=self.index_name))

    def _read(self) -> bool:
        """Before a read: refresh once after writes; False when the index does not exist."""
        if self._dirty:
            self.refresh()
        return self._exists or self.exists()

    def provenance(self) -> dict[str, Any] | None:
        return self._meta().get("lsr") if self._read() else None

    def record_provenance(self, record: Mapping[str, Any]) -> None:
        self._put_meta("lsr", {**record, "naming": self.naming.naming})

    def remote_model(self) -> dict[str, Any] | None:
        """The ML Commons model that encodes text for this index (`lsr opensearch register`), if any."""
        return self._meta().get("lsr_remote_model") if self._read() else None

    def record_remote_model(self, record: Mapping[str, Any]) -> None:
        self._put_meta("lsr_remote_model", dict(record))

    def _meta(self) -> dict[str, Any]:
        return self.client.indices.get_mapping(index=self.index_name)[self.index_name]["mappings"].get("_meta", {})

    def _put_meta(self, key: str, value: Any) -> None:
        """Set one key of the mapping's ``_meta`` (a mapping update replaces ``_meta`` whole: merge first)."""
        self._ensure_exists()
        self.client.indices.put_mapping(index=self.index_name, body={"_meta": {**self._meta(), key: value}})

    def ensure_two_phase_pipeline(self, name: str = TWO_PHASE_PIPELINE) -> str:
        """Create (or update) the named two-phase pipeline from ``pipelines/two_phase.json``.

        `search(mode="two_phase")` sends the same definition with each request and does not need it;
        the named pipeline is for other clients (``?search_pipeline=lsr-two-phase``, or as the index's
        ``index.search.default_pipeline``).
        """
        self.client.transport.perform_request("PUT", f"/_search/pipeline/{name}",
                                              body=load_definition("pipelines", "two_phase.json"))
        return name

    # ----------------------------------------------------------------------------- writing

    def _source(self, doc_id: str, vector: SparseVector, meta: Mapping[str, Any] | None) -> dict:
        keep = vector.weights >= MIN_WEIGHT  # rank_features rejects sub-normal values; they score ~0 anyway
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
            yield from stream_bulk(self.client, self.index_name, docs, self._source, self.bulk_settings,
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
            raise InvalidInputError(f"OpenSearch index {self.index_name!r} exists without a dense field (dense vectors "
                             "are fixed when an index is created): drop it, or index into a new name.")
        self._ensure_exists(dense.shape[1] if dense is not None else None)
        self._dirty = True
        docs = ((doc_id, vectors[i], metadata[i]) for i, doc_id in enumerate(ids))
        to_source = self._source
        if dense is not None:
            rows = {doc_id: normalise_rows(dense[i:i + 1])[0].tolist() for i, doc_id in enumerate(ids)}

            def to_source(doc_id: str, vector: SparseVector, meta: Mapping[str, Any] | None) -> dict:
                return {**self._source(doc_id, vector, meta), self.dense_field: rows[doc_id]}

        return summarise(stream_bulk(self.client, self.index_name, docs, to_source, self.bulk_settings,
                                     self.vocab_size), progress=len(ids) > 10_000, total=len(ids))

    @contextmanager
    def loading(self) -> Iterator["OpenSearchIndex"]:
        """A load: no refreshes (and, with `BulkSettings.async_translog`, no fsync per request) during a load.

        The settings found before are restored afterwards, and the index is refreshed once. Wrap many
        `index()` calls of one load (an incremental folder indexer's batches) in it. Asynchronous translog durability is safe
        because loads are idempotent: documents that a crashed node acknowledged but had not yet
        fsynced are sent again by re-running the same load.
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
        from opensearchpy import helpers

        ids = check_ids(ids)
        if not ids or not self._read():
            return 0
        self._dirty = True
        actions = ({"_op_type": "delete", "_index": self.index_name, "_id": i} for i in ids)
        deleted = 0
        for ok, item in helpers.streaming_bulk(self.client, actions, raise_on_error=False):
            deleted += int(ok and item["delete"].get("result") == "deleted")
        return deleted

    def count(self) -> int:
        if not self._read():
            return 0
        return int(self.client.count(index=self.index_name)["count"])

    def _get_source(self, doc_id: str) -> dict:
        from opensearchpy.exceptions import NotFoundError

        if isinstance(doc_id, str) and doc_id:
            try:
                return self.client.get(index=self.index_name, id=doc_id)["_source"]
            except NotFoundError:
                pass
        raise KeyError(f"Document {doc_id!r} is not in the index.")

    def get(self, doc_id: str) -> SparseVector:
        """The document's vector as sent (the node keeps 9 significant bits of each weight for scoring)."""
        return self.naming.from_features(self._get_source(doc_id)[self.field])

    def metadata(self, doc_id: str) -> dict[str, Any]:
        source = self._get_source(doc_id)
        return {k: v for k, v in {**source.pop("meta", {}), **source}.items() if k not in ("id", self.field)}

    def __contains__(self, doc_id: object) -> bool:
        try:
            self._get_source(doc_id)  # type: ignore[arg-type]
        except KeyError:
            return False
        return True
