"""The OpenSearch backend: a real index behind the same interface as the embedded one.

Two index kinds, both defined by files in ``mappings/`` (loaded here, never duplicated in Python):

- ``rank_features`` (default, exact): the sparse vector in a ``rank_features`` field keyed by escaped
  WordPiece tokens (see `lsr.backends.opensearch.features`), searched with ``neural_sparse`` + ``query_tokens``
  (or a bool of linear ``rank_feature`` clauses where the neural-search plugin is absent). Optional
  two-phase search through the pipeline in ``pipelines/two_phase.json``.
- ``seismic`` (approximate): a ``sparse_vector`` field keyed by token ids, searched with
  ``neural_sparse`` + ``method_parameters`` (``k``, ``top_n``, ``heap_factor``).

Writing, reading back and the load settings are shared with Elasticsearch (`lsr.backends.remote`).
Searching lives in `lsr.backends.opensearch.searching`, re-ranking and hybrid search in `.modes`.

Scores are sum(q * d) over shared tokens. OpenSearch keeps 9 significant bits of each ``rank_features``
value (it truncates the float's mantissa), so each stored document weight is within a relative
2^-8 below the original, and so is every score: ``exact * (1 - 2^-8) <= score <= exact``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from lsr.backends.opensearch.bulk import ENGINE, BulkSettings
from lsr.backends.opensearch.client import connect, load_definition, read_with_retries
from lsr.backends.opensearch.features import FeatureNaming
from lsr.backends.opensearch.modes import OpenSearchModes, dense_mapping
from lsr.backends.opensearch.query import QueryRules
from lsr.backends.opensearch.searching import OpenSearchSearching
from lsr.backends.remote import TOP_LEVEL_METADATA, RemoteIndex, shard_settings  # noqa: F401 (TOP_LEVEL_METADATA: sets)
from lsr.errors import InvalidInputError
from lsr.vocab import VOCAB_SIZE, Vocabulary

log = logging.getLogger(__name__)

KINDS = {"rank_features": ("sparse_rank_features.json", "wordpiece"), "seismic": ("sparse_seismic.json", "id")}
RELATIVE_SCORE_BOUND = 2.0 ** -8  # 9 significant bits kept by rank_features
TWO_PHASE_PIPELINE = "lsr-two-phase"


class OpenSearchIndex(OpenSearchSearching, OpenSearchModes, RemoteIndex):
    """One OpenSearch index of sparse vectors; see the module docstring (and `lsr.backends.remote`)."""

    ENGINE = ENGINE

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
        shard_settings(body["settings"]["index"], shards, replicas)
        self.client.indices.create(index=self.index_name, body=body)
        self._exists, self._dirty, self._dense_dim = True, False, dense_dim
        return True

    def _check_existing(self) -> None:
        self._check_field("rank_features" if self.kind == "rank_features" else "sparse_vector")

    def refresh(self, timeout: float = 600.0) -> None:
        """Make indexed documents searchable (on a seismic index this also builds the ANN structures)."""
        self.client.indices.refresh(index=self.index_name, request_timeout=timeout)
        self._dirty = False

    def _read_call(self, call, *args, **kwargs):
        return read_with_retries(self.client, call, *args, **kwargs)

    def remote_model(self) -> dict[str, Any] | None:
        """The ML Commons model that encodes text for this index (`lsr opensearch register`), if any."""
        return self._meta().get("lsr_remote_model") if self._read() else None

    def record_remote_model(self, record: Mapping[str, Any]) -> None:
        self._put_meta("lsr_remote_model", dict(record))

    def ensure_two_phase_pipeline(self, name: str = TWO_PHASE_PIPELINE) -> str:
        """Create (or update) the named two-phase pipeline from ``pipelines/two_phase.json``.

        `search(mode="two_phase")` sends the same definition with each request and does not need it;
        the named pipeline is for other clients (``?search_pipeline=lsr-two-phase``, or as the index's
        ``index.search.default_pipeline``).
        """
        self.client.transport.perform_request("PUT", f"/_search/pipeline/{name}",
                                              body=load_definition("pipelines", "two_phase.json"))
        return name
