"""Feature names for token ids in OpenSearch and Elasticsearch fields: lossless, reversible, safe as map keys.

Elasticsearch's ``sparse_vector`` (9.5.3 checked) takes and matches a dotted feature name, but dotted
names have been refused by earlier releases; the same ``wordpiece`` escape serves both engines, on
documents and on queries, so an index reads the same from either.

A token containing '.' is accepted in a ``rank_features`` map at index time, but a ``rank_feature``
query on ``field.<token>`` reads the dots as an object path and silently matches nothing (seen on
OpenSearch 3.6.0; ``neural_sparse`` happens to find it). Two namings avoid the problem altogether:

- ``wordpiece`` (the ``rank_features`` index): the WordPiece token with '%' written as ``%25`` and
  '.' as ``%2E`` (percent-encoding of exactly those two characters). Readable in OpenSearch
  Dashboards and in hand-written queries (``##ing``, ``cat``), and reversible for any string:
  decoding reads ``%25`` and ``%2E`` in one left-to-right pass, and every literal '%' was escaped.
- ``id`` (the seismic ``sparse_vector`` index, whose keys must be integers): the decimal token id.
"""

from __future__ import annotations

import re
from typing import Mapping

from lsr.errors import InvalidInputError
from lsr.sparse import SparseVector

from lsr.vocab import Vocabulary

NAMINGS = ("wordpiece", "id")
_ESCAPED = re.compile(r"%(25|2E)")


def escape_token(token: str) -> str:
    """A WordPiece token as a field-safe feature name ('%' -> '%25', '.' -> '%2E')."""
    if not token:
        raise InvalidInputError("Empty tokens cannot be feature names.")
    return token.replace("%", "%25").replace(".", "%2E")


def unescape_token(name: str) -> str:
    """Inverse of `escape_token`."""
    return _ESCAPED.sub(lambda m: "%" if m.group(1) == "25" else ".", name)


class FeatureNaming:
    """Maps token ids to feature names and back for one naming scheme."""

    def __init__(self, naming: str = "wordpiece", vocab: Vocabulary | None = None):
        if naming not in NAMINGS:
            raise InvalidInputError(f"Unknown feature naming {naming!r}; choose one of {', '.join(NAMINGS)}.")
        if naming == "wordpiece" and vocab is None:
            raise InvalidInputError("The wordpiece naming needs a Vocabulary.")
        self.naming = naming
        self.vocab = vocab
        if naming == "wordpiece":
            self._names = [escape_token(t) for t in vocab.tokens]
            self._ids = {n: i for i, n in enumerate(self._names)}
            if len(self._ids) != len(self._names):
                raise InvalidInputError(f"The vocabulary of {vocab.path} has tokens that collide once escaped.")

    def name(self, token_id: int) -> str:
        return self._names[token_id] if self.naming == "wordpiece" else str(int(token_id))

    def token_id(self, name: str) -> int:
        if self.naming == "id":
            return int(name)
        try:
            return self._ids[name]
        except KeyError:
            raise KeyError(f"Feature {name!r} is not a token of the vocabulary of {self.vocab.path}.") from None

    def to_features(self, vector: SparseVector) -> dict[str, float]:
        """`{feature name: weight}` for a document or query body."""
        return {self.name(int(i)): float(w) for i, w in zip(vector.ids, vector.weights)}

    def from_features(self, features: Mapping[str, float]) -> SparseVector:
        ids = [self.token_id(n) for n in features]
        return SparseVector(ids, list(features.values()))
