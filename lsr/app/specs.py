"""Descriptions of what to open, as typed values parsed from the addresses users write.

    IndexSpec.parse("runs/idx")                                   # the embedded index in a directory
    IndexSpec.parse("opensearch://127.0.0.1:9200/f30k")            # index f30k on an OpenSearch node (http)
    IndexSpec.parse("opensearch+https://search.example:9200/f30k") # the same over TLS
    IndexSpec.parse("opensearch://127.0.0.1:9200/f30k?kind=seismic")
    IndexSpec.parse("elasticsearch://127.0.0.1:9250/f30k")         # index f30k on an Elasticsearch node
    IndexSpec.parse("elasticsearch+https://127.0.0.1:9250/f30k")   # the same over TLS

Credentials never go in an address (they would show in process lists and shell history): they come
from ``OPENSEARCH_USER`` / ``OPENSEARCH_PASSWORD`` or a `Connection` passed beside the address.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from lsr.errors import InvalidInputError

BACKENDS = ("embedded", "opensearch", "elasticsearch")
KINDS = ("rank_features", "seismic")
SCHEMES = {"opensearch": "http", "opensearch+http": "http", "opensearch+https": "https",
           "elasticsearch": "http", "elasticsearch+http": "http", "elasticsearch+https": "https"}
ENGINE_NAMES = {"opensearch": "OpenSearch", "elasticsearch": "Elasticsearch"}


@dataclass(frozen=True)
class IndexSpec:
    """Where an index lives: `backend`, its `name` (embedded: the directory; OpenSearch: the index name),
    the node `url` (OpenSearch) and the index `kind` (exact ``rank_features`` or approximate ``seismic``)."""

    backend: Literal["embedded", "opensearch", "elasticsearch"]
    name: str
    url: str | None = None
    kind: Literal["rank_features", "seismic"] = "rank_features"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidInputError(f"Unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}.")
        if self.kind not in KINDS:
            raise InvalidInputError(f"Unknown index kind {self.kind!r}; choose one of {', '.join(KINDS)}.")
        if not self.name:
            raise InvalidInputError("The index address names no index: give a directory or an index name.")
        if self.backend == "elasticsearch" and self.kind != "rank_features":
            raise InvalidInputError(f"Index kind {self.kind!r} is OpenSearch's; an Elasticsearch index is exact "
                                    "sparse_vector (pruned search is --retrieval two_phase).")

    @classmethod
    def parse(cls, address: "str | Path | IndexSpec") -> "IndexSpec":
        """The spec of an address: a directory path (embedded) or ``opensearch[+https]://HOST:PORT/INDEX``."""
        if isinstance(address, IndexSpec):
            return address
        if isinstance(address, Path):
            return cls("embedded", str(address))
        text = str(address).strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else None
        if scheme is None or scheme == "file":
            return cls("embedded", text.split("://", 1)[1] if scheme else text)
        if scheme not in SCHEMES:
            raise InvalidInputError(f"Index address {text!r}: unknown scheme {scheme!r}; write a directory path or "
                                    "opensearch://HOST:PORT/INDEX or elasticsearch://HOST:PORT/INDEX (+https for "
                                    "TLS).")
        parts = urlsplit(text)
        if parts.username or parts.password:
            raise InvalidInputError(f"Index address {parts.hostname}: credentials do not go in the address; set "
                                    "OPENSEARCH_USER / OPENSEARCH_PASSWORD or pass --user / --password-file.")
        name = parts.path.strip("/")
        if not name or "/" in name:
            raise InvalidInputError(f"Index address {text!r} names no single index: write {scheme}://HOST:PORT/INDEX.")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(options) - {"kind"}
        if unknown:
            raise InvalidInputError(f"Index address {text!r}: unknown option(s) {', '.join(sorted(unknown))}; only "
                                    "kind=rank_features|seismic is taken.")
        url = f"{SCHEMES[scheme]}://{parts.netloc}"
        return cls(scheme.split("+")[0], name, url, options.get("kind", "rank_features"))  # type: ignore[arg-type]

    @classmethod
    def from_parts(cls, backend: str, index: str, url: str | None = None, kind: str = "rank_features") -> "IndexSpec":
        """The spec the command line's ``--backend --index --url --kind`` flags describe."""
        if backend == "embedded":
            return cls("embedded", index)
        return cls(backend, index, url, kind)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        """The address that `parse` reads back into this spec."""
        if self.backend == "embedded":
            return self.name
        scheme, _, host = (self.url or "").partition("://")
        query = "" if self.kind == "rank_features" else f"?kind={self.kind}"
        return f"{self.backend}{'+https' if scheme == 'https' else ''}://{host}/{self.name}{query}"

    def describe(self) -> str:
        """For messages: the directory, or the index and its node."""
        if self.backend == "embedded":
            return str(self.name)
        return f"{ENGINE_NAMES[self.backend]} index {self.name!r} at {self.url}"


@dataclass(frozen=True)
class NewIndex:
    """How to make an index that does not exist yet: the vocabulary size of its vectors, the dimension of
    dense vectors kept beside them (None: none), and OpenSearch's primary shards and replicas."""

    vocab_size: int | None = None
    dense_dim: int | None = None
    shards: int | None = None
    replicas: int | None = None
