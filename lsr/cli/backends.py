"""Backend flags and opening, shared by `lsr index | search` and `lsr index-images | search-images`.

`--backend embedded` stores the index in the directory `--index`; `--backend opensearch` writes to the
OpenSearch index named `--index` on the node at `--url` (`--kind` picks exact ``rank_features`` or
approximate ``seismic``).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Literal

from lsr.backends.opensearch.connection import DEFAULT_URL, PASSWORD_ENV, URL_ENV, USER_ENV, Connection

if TYPE_CHECKING:  # the CLI imports backends lazily, when a command needs one
    from lsr.backends.base import SparseBackend
    from lsr.vocab import Vocabulary

BACKENDS = ("embedded", "opensearch")
OpenMode = Literal["open", "create", "update"]


class BackendUnavailable(ValueError):
    """The OpenSearch node cannot be reached (a ValueError so that `lsr` prints it without a traceback)."""


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
            raise FileNotFoundError(f"Cannot read --password-file {password_file} ({exc.strerror}).") from None
    return Connection.from_env(getattr(args, "url", None), **options)


def add_backend_args(p: argparse.ArgumentParser, searching: bool) -> None:
    """Add `--backend --index --kind`, the connection flags, and `--mode` (searching) or `--overwrite`
    (indexing) to `p`."""
    p.add_argument("--backend", choices=BACKENDS, default="embedded")
    p.add_argument("--index", required=True, help="embedded: index directory; opensearch: index name")
    add_connection_args(p)
    p.add_argument("--kind", choices=("rank_features", "seismic"), default="rank_features",
                   help="OpenSearch index kind: exact rank_features, or seismic sparse ANN")
    if searching:
        p.add_argument("--mode", choices=("exact", "two_phase", "ann"), default="exact",
                       help="OpenSearch search mode: exact neural_sparse, the two-phase pipeline, or ANN (seismic)")
    else:
        p.add_argument("--overwrite", action="store_true",
                       help="start from an empty index (OpenSearch: drop and recreate an existing one)")
        p.add_argument("--shards", type=int, default=None, help="OpenSearch: primary shards of a new index (1)")
        p.add_argument("--replicas", type=int, default=None, help="OpenSearch: replicas of a new index (0)")


def describe(args: argparse.Namespace) -> str:
    """Where the index named by the backend flags lives, for messages."""
    if args.backend == "embedded":
        return str(args.index)
    return f"OpenSearch index {args.index!r} at {connection(args).url}"


def search_options(args: argparse.Namespace) -> dict:
    """Keyword arguments for `backend.search` from the flags (`mode` for OpenSearch only)."""
    return {} if args.backend == "embedded" else {"mode": getattr(args, "mode", "exact")}


def open_backend(args: argparse.Namespace, vocab: Vocabulary | None, mode: OpenMode = "open",
                 vocab_size: int | None = None, missing_hint: str = "build it first") -> SparseBackend:
    """The backend named by `args.backend` / `args.index` (and `args.url`, `args.kind` for OpenSearch).

    `mode`: "open" an existing index (FileNotFoundError with `missing_hint` when there is none),
    "create" an empty one (an existing OpenSearch index is kept unless `args.overwrite`), or "update":
    open it when it exists, else create it. `vocab_size`, when given, must match an existing embedded
    index. `vocab` names the OpenSearch ``rank_features`` (WordPiece) features.
    """
    if args.backend == "embedded":
        return _open_embedded(args, mode, vocab_size, missing_hint)
    if args.backend != "opensearch":
        raise ValueError(f"Unknown backend {args.backend!r}; choose one of {', '.join(BACKENDS)}.")
    return _open_opensearch(args, vocab, mode, vocab_size, missing_hint)


def _open_embedded(args: argparse.Namespace, mode: OpenMode, vocab_size: int | None,
                   missing_hint: str) -> SparseBackend:
    from pathlib import Path

    from lsr.backends.embedded import EmbeddedIndex

    directory = Path(args.index)
    exists = (directory / "index.json").is_file()
    if mode == "create" or (mode == "update" and (not exists or getattr(args, "overwrite", False))):
        return EmbeddedIndex(directory=directory) if vocab_size is None else EmbeddedIndex(vocab_size, directory=directory)
    if not exists and mode == "open":
        raise FileNotFoundError(f"No embedded index in {directory}; {missing_hint}.")
    index = EmbeddedIndex.load(directory, mmap=mode == "open")
    if vocab_size is not None and index.vocab_size != vocab_size:
        raise ValueError(f"{directory} holds vectors over {index.vocab_size} tokens, the encoder gives "
                         f"{vocab_size}; use a new --index directory or --overwrite.")
    return index


def _open_opensearch(args: argparse.Namespace, vocab: Vocabulary | None, mode: OpenMode,
                     vocab_size: int | None, missing_hint: str) -> SparseBackend:
    from lsr.backends.opensearch import NodeUnavailableError, OpenSearchIndex

    if vocab is not None and vocab_size is not None and vocab_size > len(vocab):
        raise ValueError(f"Vectors over {vocab_size} tokens cannot be named with a {len(vocab)}-token vocabulary.")
    conn = connection(args)
    index = OpenSearchIndex(conn, index=args.index, kind=args.kind, vocab=vocab)
    try:
        if mode == "open":
            if not index.exists():
                raise FileNotFoundError(f"No {describe(args)}; {missing_hint}.")
        else:  # create and update: an existing index is kept (and its mapping checked) unless --overwrite
            index.create(overwrite=bool(getattr(args, "overwrite", False)), dense_dim=getattr(args, "dense_dim", None),
                         shards=getattr(args, "shards", None), replicas=getattr(args, "replicas", None))
    except NodeUnavailableError as exc:
        raise BackendUnavailable(f"Cannot reach OpenSearch at {conn.url}; start the local node with "
                                 "`lsr opensearch start` or pass --url / set OPENSEARCH_URL.") from exc
    return index
