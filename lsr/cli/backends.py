"""Index and connection flags, shared by every command that opens an index.

`--index` takes an address (`lsr.app.specs.IndexSpec`): a directory for the embedded index, or
``opensearch://HOST:PORT/NAME``. The long form `--backend opensearch --index NAME --url URL` says the
same. `--kind` picks exact ``rank_features`` or approximate ``seismic``; credentials and TLS options
come from the connection flags and the environment, never from the address.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from typing import TYPE_CHECKING

from lsr.app.specs import BACKENDS, IndexSpec
from lsr.backends.opensearch.connection import DEFAULT_URL, PASSWORD_ENV, URL_ENV, USER_ENV, Connection
from lsr.errors import InvalidInputError, MissingFileError
from lsr.search.modes import Retrieval

if TYPE_CHECKING:
    from lsr.vocab import Vocabulary


def default_url() -> str:
    """The OpenSearch URL used when `--url` is not given: $OPENSEARCH_URL, else the local node."""
    return os.environ.get(URL_ENV, DEFAULT_URL)


def add_connection_args(p: argparse.ArgumentParser) -> None:
    """`--url` and the options users of a secured cluster expect (credentials, TLS, timeouts, retries)."""
    g = p.add_argument_group("OpenSearch connection")
    g.add_argument("--url", default=None,
                   help=f"OpenSearch URL, http or https (default: {URL_ENV} or {DEFAULT_URL}; `lsr opensearch start`)")
    g.add_argument("--user", default=None, help=f"basic-auth user (default: {USER_ENV}); the password comes from "
                   f"{PASSWORD_ENV} or --password-file, never from the command line")
    g.add_argument("--password-file", default=None, metavar="FILE", help="read the password from this file")
    g.add_argument("--password", action=_RefusePassword, help=argparse.SUPPRESS)  # else argparse takes it for
    # an abbreviation of --password-file and would print the password as a missing file's name
    g.add_argument("--ca-certs", default=None, metavar="PEM", help="CA bundle that signed the node's certificate")
    g.add_argument("--client-cert", default=None, metavar="PEM", help="client certificate for mutual TLS")
    g.add_argument("--client-key", default=None, metavar="PEM", help="its private key (if not in --client-cert)")
    g.add_argument("--insecure", action="store_true",
                   help="do not verify the node's TLS certificate (warns; prefer --ca-certs)")
    g.add_argument("--request-timeout", type=float, default=60.0, metavar="S", help="seconds per request")
    g.add_argument("--retries", type=int, default=3, help="tries of a read on a lost connection")


class _RefusePassword(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"--password is not taken on the command line (other users can read it in the process "
                     f"list); set {PASSWORD_ENV} or pass --password-file FILE.")


def connection(args: argparse.Namespace) -> Connection:
    """The `Connection` named by the `add_connection_args` flags (and the environment)."""
    from pathlib import Path

    options = {"ca_certs": getattr(args, "ca_certs", None), "client_cert": getattr(args, "client_cert", None),
               "client_key": getattr(args, "client_key", None), "verify": not getattr(args, "insecure", False),
               "timeout": getattr(args, "request_timeout", 60.0), "retries": getattr(args, "retries", 3)}
    if getattr(args, "user", None):
        options["user"] = args.user
    password_file = getattr(args, "password_file", None)
    if password_file:
        try:
            options["password"] = Path(password_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise MissingFileError(f"Cannot read --password-file {password_file} ({exc.strerror}).") from None
    return Connection.from_env(getattr(args, "url", None), **options)


def add_backend_args(p: argparse.ArgumentParser, searching: bool) -> None:
    """Add `--index` (an address), `--backend --kind`, the connection flags, and `--retrieval` (searching)
    or `--overwrite --shards --replicas` (indexing) to `p`."""
    p.add_argument("--index", required=True, metavar="ADDRESS",
                   help="a directory (embedded), opensearch://HOST:PORT/NAME or elasticsearch://HOST:PORT/NAME; "
                        "with --backend opensearch|elasticsearch, the index name on the node at --url")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="embedded, opensearch or elasticsearch (default: what --index says; a plain name is a "
                        "directory)")
    add_connection_args(p)
    p.add_argument("--kind", choices=("rank_features", "seismic"), default=None,
                   help="OpenSearch index kind: exact rank_features (default), or seismic sparse ANN")
    if searching:
        add_retrieval_arg(p)
    else:
        p.add_argument("--overwrite", action="store_true",
                       help="start from an empty index (an existing one is dropped)")
        p.add_argument("--shards", type=int, default=None, help="OpenSearch: primary shards of a new index (1)")
        p.add_argument("--replicas", type=int, default=None, help="OpenSearch: replicas of a new index (0)")


def add_retrieval_arg(p: argparse.ArgumentParser) -> None:
    """`--retrieval exact|two_phase|ann` (`--mode` is its earlier name)."""
    p.add_argument("--retrieval", "--mode", dest="retrieval", choices=("exact", "two_phase", "ann"), default="exact",
                   help="how OpenSearch finds candidates: exact neural_sparse, the two-phase pipeline, or ANN "
                        "(a seismic index); the embedded index is exact")


def index_spec(args: argparse.Namespace) -> IndexSpec:
    """The `IndexSpec` the flags describe: `--index` as an address, or `--backend opensearch --index NAME
    --url URL --kind KIND`."""
    address = IndexSpec.parse(args.index) if "://" in str(args.index) else None
    backend = getattr(args, "backend", None)
    kind = getattr(args, "kind", None)
    if address is not None:
        if backend not in (None, address.backend):
            raise InvalidInputError(f"--index {args.index} is an {address.backend} address, but --backend says "
                                    f"{backend}; give one of them.")
        if getattr(args, "url", None) and args.url != address.url:
            raise InvalidInputError(f"--index {args.index} names its node; leave out --url {args.url}.")
        return replace(address, kind=kind) if kind else address
    if backend in (None, "embedded"):
        return IndexSpec("embedded", str(args.index))
    if backend == "elasticsearch" and not getattr(args, "url", None):  # its own default node (port 9250)
        from lsr.backends.elasticsearch.client import DEFAULT_URL as ES_URL, URL_ENV as ES_URL_ENV

        return IndexSpec(backend, str(args.index), os.environ.get(ES_URL_ENV) or ES_URL, kind or "rank_features")
    return IndexSpec(backend, str(args.index), connection(args).url, kind or "rank_features")


def describe(args: argparse.Namespace) -> str:
    """Where the index named by the backend flags lives, for messages."""
    return index_spec(args).describe()


def retrieval(args: argparse.Namespace) -> Retrieval:
    """The `Retrieval` of `--retrieval` (exact where the command has no such flag)."""
    return Retrieval(getattr(args, "retrieval", None) or "exact")


def open_index_from_args(args: argparse.Namespace, vocab: "Vocabulary | None" = None, *, sets: bool = False,
                         missing_hint: str = "build it first"):
    """The existing index the flags name (`lsr.app.open_index`), with the connection flags' credentials."""
    from lsr.app.open import open_index

    spec = index_spec(args)
    return open_index(spec, connection=connection_for(args, spec), vocab=vocab, sets=sets, missing_hint=missing_hint)


def connection_for(args: argparse.Namespace, spec: IndexSpec) -> "Connection | None":
    """The connection to the spec's node with the flags' credentials and TLS options (None: embedded)."""
    if spec.backend == "embedded":
        return None
    conn = replace(connection(args), url=spec.url)
    if spec.backend == "elasticsearch" and not getattr(args, "user", None):  # ELASTICSEARCH_USER / _PASSWORD
        from lsr.backends.elasticsearch.client import connection_from_env

        password = conn.password if getattr(args, "password_file", None) else None
        return replace(conn, **{k: v for k, v in vars(connection_from_env(spec.url)).items()
                                if k in ("user", "password")}) if password is None else conn
    return conn


def add_query_args(p: argparse.ArgumentParser) -> None:
    """The positional query (its words make ONE query, in every command) and `--query` for more."""
    p.add_argument("words", nargs="*", metavar="QUERY",
                   help="the words of one query (quote them or not); more queries with --query")
    p.add_argument("-q", "--query", action="append", default=[], metavar="TEXT", help="another query (repeatable)")


def queries(args: argparse.Namespace) -> list[str]:
    """The query texts of `add_query_args`: the positional words as one, then each --query."""
    texts = ([" ".join(args.words)] if args.words else []) + list(args.query)
    if not texts:
        raise InvalidInputError("give a query: lsr search WORDS... (or --query TEXT)")
    return texts
