"""A trained map from query space X into document space Y with a symmetric InfoNCE loss.

The same setting as `ProcrustesMap` (two frozen, unrelated encoders; only the map is trained), but
fitted by contrastive learning: `arch="linear"` (one Linear layer) or `arch="gmlp"` (a small gated MLP
with a linear skip). Documents are fixed vectors in Y (centred on the training mean when `center`).

Several training pairs may share one document (the caption proxy has 4 query captions per document),
so a batch can hold the same document more than once. Positives are therefore defined by document id:
each batch scores its queries against its *unique* documents (query->doc cross-entropy), and each
document treats all of its captions in the batch as positives (doc->query multi-positive InfoNCE).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from lsr.dense.cosine import cosine_scores
from lsr.vectors import l2_normalise
from lsr.devices import resolve_device
from lsr.errors import InvalidInputError

ARCHS = ("linear", "gmlp")
CONFIG_FILE = "contrastive.json"
WEIGHTS_FILE = "contrastive.safetensors"
MAX_LOGIT_SCALE = math.log(100.0)


class GatedMLP(nn.Module):
    """LayerNorm -> Linear(in, 2h) -> u * gelu(v) -> Linear(h, out), plus a linear skip from the input."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.up = nn.Linear(in_dim, 2 * hidden)
        self.down = nn.Linear(hidden, out_dim)
        self.skip = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v = self.up(self.norm(x)).chunk(2, dim=-1)
        return self.skip(x) + self.down(u * F.gelu(v))


class _Net(nn.Module):
    def __init__(self, arch: str, in_dim: int, out_dim: int, hidden: int, temperature: float, learn: bool):
        super().__init__()
        self.body = nn.Linear(in_dim, out_dim) if arch == "linear" else GatedMLP(in_dim, out_dim, hidden)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)), requires_grad=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def info_nce(q: torch.Tensor, d: torch.Tensor, inv: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with positives by document id.

    `q` (b x k) mapped queries and `d` (u x k) the batch's unique documents, both L2-normalised;
    `inv[i]` is the row of query i's document in `d`.
    """
    logits = logit_scale.exp() * (q @ d.T)
    q2d = F.cross_entropy(logits, inv)
    pos = inv[None, :] == torch.arange(d.shape[0], device=d.device)[:, None]
    lt = logits.T
    d2q = (torch.logsumexp(lt, dim=1) - torch.logsumexp(lt.masked_fill(~pos, float("-inf")), dim=1)).mean()
    return 0.5 * (q2d + d2q)


def doc_ids_from_rows(Y: np.ndarray) -> np.ndarray:
    """Document ids for row-aligned pairs when none are given: identical Y rows are one document."""
    _, inv = np.unique(np.ascontiguousarray(Y), axis=0, return_inverse=True)
    return np.asarray(inv).ravel().astype(np.int64)


class ContrastiveMap:
    """A query-space -> document-space map trained with symmetric InfoNCE (torch)."""

    def __init__(self, arch: str = "linear", hidden: int = 512, temperature: float = 0.05,
                 learn_temperature: bool = True, center: bool = True, normalise: bool = True):
        if arch not in ARCHS:
            raise InvalidInputError(f"Unknown arch {arch!r}; choose one of {ARCHS}.")
        if temperature <= 0:
            raise InvalidInputError("temperature must be positive.")
        self.arch, self.hidden = arch, hidden
        self.temperature, self.learn_temperature = temperature, learn_temperature
        self.center, self.normalise = center, normalise
        self.net: _Net | None = None
        self.mean_x: np.ndarray | None = None
        self.mean_y: np.ndarray | None = None
        self.in_dim: int | None = None
        self.out_dim: int | None = None
        self.n_train = 0
        self.epochs = 0
        self.history: list[float] = []
        self.device = torch.device("cpu")

    def _base(self, v: np.ndarray, name: str) -> np.ndarray:
        v = np.atleast_2d(np.asarray(v, dtype=np.float32))
        return l2_normalise(v, name) if self.normalise else v

    def _build(self, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = _Net(self.arch, self.in_dim, self.out_dim, self.hidden, self.temperature,
                            self.learn_temperature)

    def fit(self, X: np.ndarray, Y: np.ndarray, doc_ids: np.ndarray | None = None, epochs: int = 20,
            batch_size: int = 512, lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0,
            device: str | None = None, show_progress: bool = False) -> "ContrastiveMap":
        """Train on row-aligned pairs X (n x dx), Y (n x dy); `doc_ids` (n,) mark pairs sharing a document.

        Without `doc_ids`, identical Y rows count as one document. `epochs=0` gives the untrained
        (seeded random) map. AdamW with cosine learning-rate decay; the logit scale is clamped to 100.
        """
        X, Y = self._base(X, "query-space training vectors"), self._base(Y, "document-space training vectors")
        if len(X) != len(Y):
            raise InvalidInputError(f"X has {len(X)} rows but Y has {len(Y)}; pairs must be row-aligned.")
        if len(X) < 2:
            raise InvalidInputError("Training a map needs at least 2 training pairs.")
        ids = doc_ids_from_rows(Y) if doc_ids is None else np.asarray(doc_ids, dtype=np.int64).ravel()
        if len(ids) != len(X):
            raise InvalidInputError(f"doc_ids has {len(ids)} entries for {len(X)} pairs.")
        self.in_dim, self.out_dim, self.n_train, self.epochs = X.shape[1], Y.shape[1], len(X), epochs
        self.mean_x = X.mean(axis=0) if self.center else np.zeros(X.shape[1], np.float32)
        self.mean_y = Y.mean(axis=0) if self.center else np.zeros(Y.shape[1], np.float32)
        self.device = resolve_device(device)
        self._build(seed)
        net = self.net.to(self.device)
        self.history = []
        if epochs <= 0:
            net.eval()
            return self

        xt = torch.from_numpy(X - self.mean_x).to(self.device)
        yt = F.normalize(torch.from_numpy(Y - self.mean_y).to(self.device), dim=1)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
        steps = epochs * math.ceil(len(X) / batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        gen = torch.Generator().manual_seed(seed)
        net.train()
        bar = tqdm(total=steps, desc=f"contrastive {self.arch}", disable=not show_progress, unit="step")
        for _ in range(epochs):
            perm = torch.randperm(len(X), generator=gen).numpy()
            total, count = 0.0, 0
            for start in range(0, len(X), batch_size):
                rows = perm[start:start + batch_size]
                _, first, inv = np.unique(ids[rows], return_index=True, return_inverse=True)
                rows_t = torch.from_numpy(rows).to(self.device)
                q = F.normalize(net(xt[rows_t]), dim=1)
                d = yt[rows_t[torch.from_numpy(first).to(self.device)]]
                loss = info_nce(q, d, torch.from_numpy(np.asarray(inv).ravel()).to(self.device), net.logit_scale)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                with torch.no_grad():
                    net.logit_scale.clamp_(max=MAX_LOGIT_SCALE)
                total += float(loss.detach()) * len(rows)
                count += len(rows)
                bar.update(1)
            self.history.append(total / count)
        bar.close()
        net.eval()
        return self

    def _check(self) -> None:
        if self.net is None:
            raise RuntimeError("ContrastiveMap is not fitted; call fit(X, Y) or load(dir) first.")

    @torch.inference_mode()
    def transform(self, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Query-space vectors mapped into the (centred) document space, float32 (not normalised)."""
        self._check()
        X = self._base(X, "query-space vectors")
        if X.shape[1] != self.in_dim:
            raise InvalidInputError(f"Expected query vectors of dimension {self.in_dim}, got {X.shape[1]}.")
        X = X - self.mean_x
        out = np.empty((len(X), self.out_dim), dtype=np.float32)
        for start in range(0, len(X), batch_size):
            block = torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size])).to(self.device)
            out[start:start + len(block)] = self.net(block).float().cpu().numpy()
        return out

    def transform_docs(self, Y: np.ndarray) -> np.ndarray:
        """Document-space vectors in the comparison space (normalised if set, centred on the training mean)."""
        self._check()
        Y = self._base(Y, "document-space vectors")
        if Y.shape[1] != self.out_dim:
            raise InvalidInputError(f"Expected document vectors of dimension {self.out_dim}, got {Y.shape[1]}.")
        return (Y - self.mean_y).astype(np.float32)

    def scores(self, queries_X: np.ndarray, docs_Y: np.ndarray) -> np.ndarray:
        """(n_queries x n_docs) cosine between mapped queries and documents."""
        return cosine_scores(self.transform(queries_X), self.transform_docs(docs_Y))

    @property
    def final_temperature(self) -> float:
        self._check()
        return float(torch.exp(-self.net.logit_scale.detach()).cpu())

    def describe(self) -> str:
        """One line saying what was trained."""
        name = "linear map" if self.arch == "linear" else f"gated MLP (hidden {self.hidden}, linear skip)"
        if self.net is None:
            return f"contrastive {name} (not fitted)"
        temp = (f"temperature learnable from {self.temperature:g} (now {self.final_temperature:.4f})"
                if self.learn_temperature else f"temperature fixed at {self.temperature:g}")
        return (f"contrastive {name} {self.in_dim}->{self.out_dim}, symmetric InfoNCE with positives by document id, "
                f"{temp}, {self.epochs} epochs on {self.n_train} pairs")

    def save(self, directory: str | Path) -> Path:
        """Write `contrastive.safetensors` (weights and means) and `contrastive.json` (config)."""
        from safetensors.torch import save_file

        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        tensors["mean_x"] = torch.from_numpy(np.ascontiguousarray(self.mean_x, dtype=np.float32))
        tensors["mean_y"] = torch.from_numpy(np.ascontiguousarray(self.mean_y, dtype=np.float32))
        save_file(tensors, str(d / WEIGHTS_FILE))
        config = {"format": 1, "arch": self.arch, "hidden": self.hidden, "temperature": self.temperature,
                  "learn_temperature": self.learn_temperature, "center": self.center, "normalise": self.normalise,
                  "in_dim": self.in_dim, "out_dim": self.out_dim, "n_train": self.n_train, "epochs": self.epochs,
                  "history": self.history}
        (d / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "ContrastiveMap":
        """Read a map written by `save`."""
        from safetensors.torch import load_file

        d = Path(directory)
        c = json.loads((d / CONFIG_FILE).read_text(encoding="utf-8"))
        m = cls(arch=c["arch"], hidden=c["hidden"], temperature=c["temperature"],
                learn_temperature=c["learn_temperature"], center=c["center"], normalise=c["normalise"])
        m.in_dim, m.out_dim, m.n_train, m.epochs = c["in_dim"], c["out_dim"], c["n_train"], c["epochs"]
        m.history = list(c.get("history", []))
        tensors = load_file(str(d / WEIGHTS_FILE))
        m.mean_x, m.mean_y = tensors.pop("mean_x").numpy(), tensors.pop("mean_y").numpy()
        m._build(0)
        m.net.load_state_dict({k[len("net."):]: v for k, v in tensors.items()})
        m.device = resolve_device(device)
        m.net.to(m.device).eval()
        return m
