"""Image folders as an application: index a folder (incrementally) and open a searcher over it.

    result = index_folder("photos/", "runs/photos-index")                 # efficientnet-labels, embedded
    searcher = open_folder_searcher("runs/photos-index")                   # the encoder that built it

Besides the index, a folder index keeps state: the manifest (which files the index holds, in which
version), the feature cache and the settings (which encoder built it). The embedded backend keeps it in
its index directory. For OpenSearch it lives in `state`, by default
``$XDG_CACHE_HOME/lsr/images/<host>-<port>/<index name>`` (``~/.cache/...``): per user, outside the image
folder (which may be read-only or synced) and outside the OpenSearch node home, keyed by node and index so
two nodes with an index of the same name never share a manifest. Losing it is safe: the next run
re-encodes and re-indexes every file under the same ids (replacing, not duplicating); only files deleted
meanwhile can no longer be pruned.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lsr.app.open import EncoderSpec, finish_writing, load_encoder, open_index
from lsr.app.specs import IndexSpec, NewIndex
from lsr.errors import InvalidInputError, MissingFileError
from lsr.images.photos import SCORE_FLOORS, photo_filter, score_floor  # re-exported: the app layer's names

if TYPE_CHECKING:
    from lsr.backends.base import SparseBackend
    from lsr.backends.opensearch.connection import Connection
    from lsr.images.indexer import FolderIndexReport
    from lsr.search.searcher import SparseSearcher

SETTINGS = "images.json"  # in the state directory: which encoder (and D2S model) built the index
MANIFEST = "images-manifest.parquet"
CACHE = "feature-cache"
DEFAULT_IMAGE_ENCODER = "efficientnet-labels"


@dataclass(frozen=True)
class FolderOptions:
    """How to index a folder: `cache` (feature cache directory; default STATE/feature-cache; None with
    `use_cache=False`), batch size, the pixel limit of one image, and whether to `prune` vanished files."""

    cache: str | None = None
    use_cache: bool = True
    batch_size: int = 32
    max_pixels: int | None = None
    prune: bool = False
    show_progress: bool = False


@dataclass(frozen=True)
class FolderIndexed:
    """What `index_folder` did: the index, the run's report and where the folder state lives."""

    index: "SparseBackend"
    report: "FolderIndexReport"
    state: Path


def default_state_dir(url: str, index_name: str) -> Path:
    """Where an OpenSearch folder index keeps its state unless told otherwise (module docstring)."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    node = f"{parts.hostname or 'localhost'}-{parts.port or (443 if parts.scheme == 'https' else 9200)}"
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "lsr" / "images" / node / index_name


def state_dir(address: "str | Path | IndexSpec", state: str | Path | None = None,
              connection: "Connection | None" = None) -> Path:
    """The state directory of a folder index; refuses one inside the local OpenSearch node's home."""
    spec = IndexSpec.parse(address)
    if state is None and spec.backend == "embedded":
        return Path(spec.name)
    if state is None:
        url = connection.url if connection is not None else spec.url
        if url is None:
            from lsr.backends.opensearch.connection import Connection

            url = Connection.from_env().url
        return default_state_dir(url, spec.name)
    path = Path(state)
    if spec.backend == "opensearch":
        from lsr.node.run import NodeConfig

        home = NodeConfig.from_env().home.resolve()
        if path.resolve().is_relative_to(home):
            raise InvalidInputError(f"The state directory {path} lies inside the OpenSearch node home {home}, which the "
                                    "node manager owns; pick a directory elsewhere.")
    return path


@dataclass
class FolderJob:
    """An opened folder index, ready to be brought up to date once (`run`) or again and again (the watch
    loop, `lsr.app.watch`): the encoder is loaded and the index opened only once."""

    folder: Path
    index: "SparseBackend"
    sparse: object  # the SparseEncoder (LabelTokenEncoder / D2SEncoder)
    state: Path
    options: FolderOptions
    settings: dict

    def run(self, *, settle_s: float = 0.0, commit_unchanged: bool = True) -> "FolderIndexReport":
        from lsr.images import index_image_folder
        from lsr.images.io import DEFAULT_MAX_PIXELS

        options = self.options
        image_encoder = getattr(self.sparse, "encoder", None) or self.sparse.dense  # LabelTokenEncoder / D2SEncoder
        cache = None if not options.use_cache else Path(options.cache) if options.cache else self.state / CACHE
        return index_image_folder(self.folder, image_encoder, self.index, getattr(self.sparse, "model", None),
                                  manifest_path=self.state / MANIFEST, cache_dir=cache, batch_size=options.batch_size,
                                  max_pixels=options.max_pixels or DEFAULT_MAX_PIXELS, prune=options.prune,
                                  show_progress=options.show_progress, settle_s=settle_s,
                                  commit_unchanged=commit_unchanged)


def open_folder_job(folder: str | Path, address: "str | Path | IndexSpec", encoder: EncoderSpec | None = None, *,
                    options: FolderOptions = FolderOptions(), state: str | Path | None = None, overwrite: bool = False,
                    connection: "Connection | None" = None, new: NewIndex | None = None) -> FolderJob:
    """Load the encoder, open (or create) the index and record the settings; see `index_folder`."""
    spec = IndexSpec.parse(address)
    if not Path(folder).is_dir():
        raise MissingFileError(f"Image folder {folder} does not exist or is not a directory.")
    encoder = encoder or EncoderSpec(image_encoder=DEFAULT_IMAGE_ENCODER)
    if encoder.image_encoder is None:
        encoder = replace(encoder, image_encoder=DEFAULT_IMAGE_ENCODER)
    where = state_dir(spec, state, connection)
    sparse = load_encoder(encoder)
    base = new or NewIndex()
    index = open_index(spec, create=True, overwrite=overwrite, connection=connection, vocab=sparse.vocab,
                       new=NewIndex(sparse.vocab_size, base.dense_dim, base.shards, base.replicas),
                       missing_hint=f"build one with `lsr index-images FOLDER --index {spec.address}`")
    if overwrite:  # the old manifest describes documents that are gone now
        (where / MANIFEST).unlink(missing_ok=True)
    where.mkdir(parents=True, exist_ok=True)
    settings = {"encoder": encoder.image_encoder, "encoder_path": encoder.image_encoder_path, "model": encoder.model,
                "tokenizer_dir": encoder.tokenizer_dir, "folder": str(Path(folder).absolute())}
    (where / SETTINGS).write_text(json.dumps(settings, indent=2))
    index.record_provenance(sparse.provenance())
    return FolderJob(Path(folder), index, sparse, where, options, settings)


def index_folder(folder: str | Path, address: "str | Path | IndexSpec", encoder: EncoderSpec | None = None, *,
                 options: FolderOptions = FolderOptions(), state: str | Path | None = None, overwrite: bool = False,
                 connection: "Connection | None" = None, new: NewIndex | None = None) -> FolderIndexed:
    """Index (or bring up to date) the images under `folder` into the index at `address`.

    `encoder` names the image encoder (default efficientnet-labels, offline) and, for a dense one, the D2S
    model. Unchanged files are skipped (the manifest), moved ones keep their vectors, features are cached,
    and with ``options.prune`` documents whose files are gone are deleted. The settings are saved so that a
    searcher opens the index with the encoder that built it.
    """
    job = open_folder_job(folder, address, encoder, options=options, state=state, overwrite=overwrite,
                          connection=connection, new=new)
    report = job.run()
    reader = finish_writing(job.index, address, connection=connection, vocab=job.sparse.vocab)  # lock released
    return FolderIndexed(reader, report, job.state)


def folder_settings(address: "str | Path | IndexSpec", state: str | Path | None = None,
                    connection: "Connection | None" = None) -> dict:
    """The settings a folder index was built with (empty when there are none)."""
    path = state_dir(address, state, connection) / SETTINGS
    return json.loads(path.read_text()) if path.is_file() else {}


def open_folder_searcher(address: "str | Path | IndexSpec", encoder: EncoderSpec | None = None, *,
                         state: str | Path | None = None, connection: "Connection | None" = None) -> "SparseSearcher":
    """A searcher over a folder index, with the encoder recorded in its settings; fields given in
    `encoder` override the recorded ones (the recorded weights are kept only for the same encoder)."""
    from lsr.search.searcher import SparseSearcher

    spec = IndexSpec.parse(address)
    settings = folder_settings(spec, state, connection)
    given = encoder or EncoderSpec()
    name = given.image_encoder or settings.get("encoder")
    if name is None:
        raise InvalidInputError(f"No image encoder given and no {SETTINGS} in {state_dir(spec, state, connection)}: "
                                f"build the index with `lsr index-images FOLDER --index {spec.address}`, or pass "
                                "--encoder.")
    same = name == settings.get("encoder")
    recorded = {k: settings.get(k) if same else None for k in ("encoder_path", "model", "tokenizer_dir")}
    full = EncoderSpec(model=given.model or recorded["model"], image_encoder=name,
                       image_encoder_path=given.image_encoder_path or recorded["encoder_path"],
                       tokenizer_dir=given.tokenizer_dir or recorded["tokenizer_dir"], device=given.device)
    sparse = load_encoder(full)
    index = open_index(spec, connection=connection, vocab=sparse.vocab,
                       missing_hint=f"build one with `lsr index-images FOLDER --index {spec.address}`")
    return SparseSearcher(index, sparse)


__all__ = ["FolderIndexed", "FolderJob", "FolderOptions", "SCORE_FLOORS", "default_state_dir", "folder_settings",
           "index_folder", "open_folder_job", "open_folder_searcher", "photo_filter", "score_floor", "state_dir"]
