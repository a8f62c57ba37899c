"""What built an index: the model (name + content hash), the vocabulary and the token naming.

Indexers record it on the backend (`SparseBackend.record_provenance`: the embedded index's manifest,
an OpenSearch mapping's ``_meta``); searchers compare it with their encoder's (`check`): another
vocabulary is refused (token ids would mean other words), another model is warned about (the vectors
still share the vocabulary, but scores mix two models).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from lsr.errors import ProvenanceError

if TYPE_CHECKING:
    from torch import nn

    from lsr.vocab import Vocabulary

log = logging.getLogger(__name__)


def vocab_hash(vocab: "Vocabulary") -> str:
    """A short content hash of the vocabulary's tokens, in id order."""
    return hashlib.sha256("\n".join(vocab.tokens).encode("utf-8")).hexdigest()[:16]


def model_hash(model: "nn.Module") -> str:
    """A short content hash of a model's parameters and buffers (names, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]


def model_record(name: str, model: "nn.Module | None", vocab: "Vocabulary", kind: str, **extra: Any) -> dict[str, Any]:
    """The provenance record of an encoder (`model` None: an encoder without trained weights)."""
    record = {"encoder": name, "kind": kind, "model_hash": model_hash(model) if model is not None else None,
              "vocab_size": len(vocab), "vocab_hash": vocab_hash(vocab)}
    record.update({k: v for k, v in extra.items() if v is not None})
    return record


def check(stored: Mapping[str, Any] | None, current: Mapping[str, Any], where: str) -> None:
    """Refuse a vocabulary mismatch between an index (`stored`) and an encoder; warn on another model."""
    if not stored:
        return
    for key in ("vocab_size", "vocab_hash"):
        if stored.get(key) is not None and stored.get(key) != current.get(key):
            raise ProvenanceError(f"{where} was built over another vocabulary ({key} {stored.get(key)!r}, the encoder's "
                             f"{current.get(key)!r}): its token ids mean other words. Search it with the encoder "
                             f"that built it ({stored.get('encoder')!r}) or re-index.")
    hashes = stored.get("model_hash"), current.get("model_hash")
    same = hashes[0] == hashes[1] if None not in hashes else stored.get("encoder") == current.get("encoder")
    if not same:
        warnings.warn(f"{where} was built by {stored.get('encoder')!r} (model {stored.get('model_hash')}), the "
                      f"query encoder is {current.get('encoder')!r} (model {current.get('model_hash')}); scores mix "
                      "two models.", UserWarning, stacklevel=3)


# ---------------------------------------------------------------- what measured a benchmark figure

def source_digest(paths: list[str], root: str | Path) -> dict[str, str]:
    """{path: short sha256 of the file's bytes} for the source files a benchmark measures (paths relative
    to `root`; a missing file maps to "missing")."""
    out = {}
    for rel in paths:
        file = Path(root) / rel
        out[rel] = hashlib.sha256(file.read_bytes()).hexdigest()[:16] if file.is_file() else "missing"
    return out


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on: cores, CPU model, load averages before the run, Python and numpy."""
    import os
    import platform

    import numpy

    model = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {"cores": os.cpu_count(), "cpu": model, "load_before": load, "python": platform.python_version(),
            "numpy": numpy.__version__}


def benchmark_record(name: str, command: str, sources: list[str], root: str | Path, results: Any) -> dict[str, Any]:
    """A benchmark's JSON record: what ran (`command`, the checkout's commit), where (`machine`), the digests
    of the `sources` it measures (`stale_sources` compares them with the files as they are now), and `results`."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", *sources], cwd=root, capture_output=True,
                                    text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {"benchmark": name, "command": command, "commit": commit, "sources_modified_at_commit": dirty,
            "machine": machine(), "sources": source_digest(sources, root), "results": results}


def stale_sources(record: Mapping[str, Any], root: str | Path) -> list[str]:
    """The measured source files (a record's ``sources``) whose content changed since the record was made."""
    recorded = record.get("sources") or {}
    now = source_digest(list(recorded), root)
    return [path for path, digest in recorded.items() if now[path] != digest]
