"""Backend flags and opening, shared by `lsr index | search` and `lsr index-images | search-images`.

`--backend embedded` stores the index in the directory `--index`; `--backend opensearch` writes to the
OpenSearch index named `--index` on the node at `--url` (`--kind` picks exact ``rank_features`` or
approximate ``seismic``).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the CLI imports backends lazily, when a command needs one
    from lsr.backends.base import SparseBackend
    from lsr.vocab import Vocabulary

BACKENDS = ("embedded", "opensearch")
DEFAULT_URL = "http://127.0.0.1:9200"
OpenMode = Literal["open", "create", "update"]


class BackendUnavailable(ValueError):
    """The OpenSearch node cannot be reached (a ValueError so that `lsr` prints it without a traceback)."""


def default_url() -> str:
    """The OpenSearch URL used when `--url` is not given: $OPENSEARCH_URL, else the local node."""
    return os.environ.get("OPENSEARCH_URL", DEFAULT_URL)


def add_backend_args(p: argparse.ArgumentParser, searching: bool) -> None:
    """Add `--backend --index --url --kind` and `--mode` (searching) or `--overwrite` (indexing) to `p`."""
    p.add_argument("--backend", choices=BACKENDS, default="embedded")
    p.add_argument("--index", required=True, help="embedded: index directory; opensearch: index name")
    p.add_argument("--url", default=default_url(),
                   help=f"OpenSearch URL (default: OPENSEARCH_URL or {DEFAULT_URL}; `lsr opensearch start`)")
    p.add_argument("--kind", choices=("rank_features", "seismic"), default="rank_features",
                   help="OpenSearch index kind: exact rank_features, or seismic sparse ANN")
    if searching:
        p.add_argument("--mode", choices=("exact", "two_phase", "ann"), default="exact",
                       help="OpenSearch search mode: exact neural_sparse, the two-phase pipeline, or ANN (seismic)")
    else:
        p.add_argument("--overwrite", action="store_true",
                       help="start from an empty index (OpenSearch: drop and recreate an existing one)")


def describe(args: argparse.Namespace) -> str:
    """Where the index named by the backend flags lives, for messages."""
    if args.backend == "embedded":
        return str(args.index)
    return f"OpenSearch index {args.index!r} at {args.url}"


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
    from lsr.backends.opensearch import OpenSearchIndex

    if vocab is not None and vocab_size is not None and vocab_size > len(vocab):
        raise ValueError(f"Vectors over {vocab_size} tokens cannot be named with a {len(vocab)}-token vocabulary.")
    index = OpenSearchIndex(args.url, index=args.index, kind=args.kind, vocab=vocab)
    try:
        from opensearchpy.exceptions import ConnectionError as NodeDown

        if mode == "open":
            if not index.client.indices.exists(index=args.index):
                raise FileNotFoundError(f"No {describe(args)}; {missing_hint}.")
        else:  # create and update: an existing index is kept (and its mapping checked) unless --overwrite
            index.create(overwrite=bool(getattr(args, "overwrite", False)), dense_dim=getattr(args, "dense_dim", None))
    except NodeDown as exc:
        raise BackendUnavailable(f"Cannot reach OpenSearch at {args.url} ({exc.__class__.__name__}); start the "
                                 "local node with `lsr opensearch start` or pass --url / set OPENSEARCH_URL.") from exc
    return index
