"""Open what a description names: an index from its address, an encoder from a model directory or name.

These are the only functions that turn user-given addresses and names into objects; the command line,
the search page, the benchmarks and Python users all go through them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lsr.app.specs import ENGINE_NAMES, IndexSpec, NewIndex
from lsr.errors import BackendUnavailableError, IndexNotFoundError, InvalidInputError

if TYPE_CHECKING:
    from lsr.backends.base import SparseBackend
    from lsr.backends.opensearch.connection import Connection
    from lsr.backends.set_base import SetIndex
    from lsr.encoders.sparse import SparseEncoder
    from lsr.vocab import Vocabulary


def open_index(address: "str | Path | IndexSpec", *, create: bool = False, overwrite: bool = False,
               new: NewIndex | None = None, connection: "Connection | None" = None,
               vocab: "Vocabulary | None" = None, sets: bool = False,
               missing_hint: str = "build it first (`lsr index` or `lsr index-images`)") -> "SparseBackend | SetIndex":
    """The index at `address` (`IndexSpec.parse`: a directory, ``opensearch://HOST:PORT/INDEX`` or
    ``elasticsearch://HOST:PORT/INDEX``).

    By default it must exist (`IndexNotFoundError`, with `missing_hint`). `create=True` opens it when it
    exists, else makes it as `new` says; `overwrite=True` starts from an empty index (an existing one is
    dropped). An existing index whose vocabulary size differs from ``new.vocab_size`` is refused.
    `connection` carries OpenSearch credentials and TLS options (default: from the environment);
    `vocab` names OpenSearch's WordPiece features; `sets=True` opens a set index (`SetIndex`).
    """
    spec = IndexSpec.parse(address)
    new = new or NewIndex()
    if spec.backend == "embedded":
        if sets:
            return _embedded_sets(spec, create or overwrite, new)
        return _embedded(spec, create, overwrite, new, missing_hint)
    return _opensearch(spec, create, overwrite, new, connection, vocab, sets, missing_hint)


def _embedded(spec: IndexSpec, create: bool, overwrite: bool, new: NewIndex, missing_hint: str) -> "SparseBackend":
    from lsr.backends.embedded import EmbeddedIndex

    directory = Path(spec.name)
    exists = (directory / "index.json").is_file()
    if overwrite or (create and not exists):
        return EmbeddedIndex(directory=directory) if new.vocab_size is None else \
            EmbeddedIndex(new.vocab_size, directory=directory)
    if not exists:
        raise IndexNotFoundError(f"No embedded index in {directory}; {missing_hint}.")
    index = EmbeddedIndex.load(directory, mmap=not create)
    if new.vocab_size is not None and index.vocab_size != new.vocab_size:
        raise InvalidInputError(f"{directory} holds vectors over {index.vocab_size} tokens, the encoder gives "
                                f"{new.vocab_size}; use a new index directory or overwrite it (--overwrite).")
    return index


def _embedded_sets(spec: IndexSpec, create: bool, new: NewIndex) -> "SetIndex":
    from lsr.backends.embedded_sets import EmbeddedSetIndex

    if create:
        return EmbeddedSetIndex(directory=spec.name) if new.vocab_size is None else \
            EmbeddedSetIndex(vocab_size=new.vocab_size, directory=spec.name)
    return EmbeddedSetIndex.load(spec.name)


def _remote(spec: IndexSpec, connection: "Connection | None"):
    """(index class, set index class, connection, unavailable error, start command) of the spec's engine."""
    if spec.backend == "elasticsearch":
        from lsr.backends.elasticsearch.client import NodeUnavailableError, connection_from_env
        from lsr.backends.elasticsearch.index import ElasticsearchIndex as Index
        from lsr.backends.elasticsearch.sets import ElasticsearchSetIndex as SetKind

        conn = connection if connection is not None else connection_from_env(spec.url)  # ELASTICSEARCH_USER ...
        hint = "`lsr elasticsearch start` or check the address"
    else:
        from lsr.backends.opensearch import NodeUnavailableError, OpenSearchIndex as Index  # type: ignore[no-redef]
        from lsr.backends.opensearch.connection import Connection
        from lsr.backends.opensearch.sets import OpenSearchSetIndex as SetKind  # type: ignore[no-redef]

        conn = connection if connection is not None else Connection.from_env(spec.url)
        hint = "`lsr opensearch start` or pass --url / set OPENSEARCH_URL"
    return Index, SetKind, (replace(conn, url=spec.url) if spec.url and conn.url != spec.url else conn), \
        NodeUnavailableError, hint


def _opensearch(spec: IndexSpec, create: bool, overwrite: bool, new: NewIndex, connection: "Connection | None",
                vocab: "Vocabulary | None", sets: bool, missing_hint: str) -> "SparseBackend | SetIndex":
    """An OpenSearch or Elasticsearch index (the spec's backend says which)."""
    if vocab is not None and new.vocab_size is not None and new.vocab_size > len(vocab):
        raise InvalidInputError(f"Vectors over {new.vocab_size} tokens cannot be named with a {len(vocab)}-token "
                                "vocabulary.")
    Index, SetKind, conn, unavailable, hint = _remote(spec, connection)
    try:
        if sets:
            set_index = SetKind(conn, index=spec.name, vocab=vocab)
            if create or overwrite:
                set_index.create(overwrite=overwrite)
            return set_index
        options = {"kind": spec.kind} if spec.backend == "opensearch" else {}
        index = Index(conn, index=spec.name, vocab=vocab, **options)
        if create or overwrite:  # an existing index is kept (and its mapping checked) unless overwrite
            index.create(overwrite=overwrite, dense_dim=new.dense_dim, shards=new.shards, replicas=new.replicas)
        elif not index.exists():
            raise IndexNotFoundError(f"No {spec.describe()}; {missing_hint}.")
    except unavailable as exc:
        raise BackendUnavailableError(f"Cannot reach {ENGINE_NAMES[spec.backend]} at {conn.url}; start the local "
                                      f"node with {hint}.") from exc
    return index


@dataclass(frozen=True)
class EncoderSpec:
    """Which query / document encoder to build, from local files only.

    `model`: a D2S model directory (its config records the frozen dense encoder it was trained on);
    `image_encoder`: a registered image encoder name (``efficientnet-labels`` needs no model; ``blip``,
    ``lavis-blip``, ``lavis-albef`` need `model` and their weights at `image_encoder_path`).
    `dense_encoder` / `dense_encoder_path` replace the text encoder the model records (same dimension).
    """

    model: str | None = None
    image_encoder: str | None = None
    image_encoder_path: str | None = None
    tokenizer_dir: str | None = None
    dense_encoder: str | None = None
    dense_encoder_path: str | None = None
    device: str | None = None


def load_encoder(spec: "str | Path | EncoderSpec", *, device: str | None = None) -> "SparseEncoder":
    """The sparse encoder a spec names: a D2S model directory (``"runs/demo/model"``), an image encoder
    name (``"efficientnet-labels"``), or an `EncoderSpec`. A model saved with inference-free queries keeps
    its query table whatever dense encoder is given."""
    if not isinstance(spec, EncoderSpec):
        from lsr.encoders.names import IMAGE_ENCODERS

        text = str(spec)
        spec = EncoderSpec(image_encoder=text) if text in IMAGE_ENCODERS else EncoderSpec(model=text)
    device = device or spec.device
    if spec.image_encoder is not None:
        return _image_sparse_encoder(spec, device)
    if spec.model is None:
        raise InvalidInputError("No encoder named: give a D2S model directory (--model) or an image encoder "
                                "(--encoder).")
    from lsr.encoders.sparse import D2SEncoder

    dense = None
    if spec.dense_encoder or spec.dense_encoder_path:
        from lsr.encoders.registry import load_dense_encoder

        dense = load_dense_encoder(spec.dense_encoder or "minilm", spec.dense_encoder_path, device, spec.tokenizer_dir)
    encoder = D2SEncoder.from_pretrained(spec.model, dense=dense, device=device)
    if dense is None and not encoder.model.config.dense_encoder:  # older models record none: MiniLM, as before
        from lsr.encoders.registry import load_dense_encoder

        encoder._set_dense(load_dense_encoder("minilm", None, device))
    return encoder


def _image_sparse_encoder(spec: EncoderSpec, device: str | None) -> "SparseEncoder":
    from lsr.encoders.base import SparseImageEncoder
    from lsr.encoders.registry import load_image_encoder
    from lsr.encoders.sparse import D2SEncoder, LabelTokenEncoder

    image = load_image_encoder(spec.image_encoder, spec.image_encoder_path, device, spec.tokenizer_dir)
    if isinstance(image, SparseImageEncoder):
        return LabelTokenEncoder(image)
    if spec.model is None:
        raise InvalidInputError(f"Encoder {spec.image_encoder!r} needs the D2S model the index was built with "
                                "(--model DIR).")
    from lsr.d2s.model import D2SModel

    return D2SEncoder(D2SModel.from_pretrained(spec.model), image, vocab=image.vocab)


def finish_writing(index: "SparseBackend | SetIndex", address: "str | Path | IndexSpec", *,
                   connection: "Connection | None" = None, vocab: "Vocabulary | None" = None,
                   sets: bool = False) -> "SparseBackend | SetIndex":
    """Commit a job's writes and give back a reader: a directory index releases its writer lock (so another
    process may write next) and is opened again for reading; a server index is already both."""
    if hasattr(index, "commit"):
        index.commit()
    spec = IndexSpec.parse(address)
    if spec.backend != "embedded":
        return index
    if hasattr(index, "close"):
        index.close()
    return open_index(spec, connection=connection, vocab=vocab, sets=sets)
