"""Set-valued documents in Elasticsearch: each member's sparse vector in a ``nested`` ``sparse_vector``
field (``mappings/es_sparse_sets.json``), searched with a ``nested`` query around an exact
``sparse_vector`` query whose ``score_mode`` (max / sum / avg over the matching members) aggregates them,
as `EmbeddedSetIndex` and `OpenSearchSetIndex` do (the request and the query-set rules are OpenSearch's:
`lsr.backends.opensearch.sets`).
"""

from __future__ import annotations

from lsr.backends.elasticsearch.client import ENGINE, connect, read_with_retries
from lsr.backends.elasticsearch.index import sparse_clause
from lsr.backends.features import FeatureNaming
from lsr.backends.opensearch.query import QueryRules
from lsr.backends.opensearch.sets import FIELD, OpenSearchSetIndex
from lsr.sparse import SparseVector
from lsr.vocab import Vocabulary


class ElasticsearchSetIndex(OpenSearchSetIndex):
    """One Elasticsearch index of set-valued documents (see the module docstring)."""

    MAPPING = "es_sparse_sets.json"
    ENGINE = ENGINE

    def __init__(self, client_or_url, index: str = "lsr-sets", vocab: Vocabulary | None = None):
        self.client = connect(client_or_url)
        self.index_name = index
        self.naming = FeatureNaming("wordpiece", vocab if vocab is not None else Vocabulary())
        self.vocab_size = len(self.naming.vocab)
        self.rules = QueryRules(max_weight=float("inf"))  # no weight cap on Elasticsearch's side

    def _member_clause(self, sent: SparseVector) -> dict:
        return sparse_clause(self.naming.to_features(sent), f"{FIELD}.sparse", prune=False)

    def _read_call(self, call, *args, **kwargs):
        return read_with_retries(self.client, call, *args, **kwargs)
