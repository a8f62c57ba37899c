"""Linear maps between two unrelated embedding spaces fitted on paired vectors (x_i, y_i).

After Choi et al. (ECIR 2023), "Procrustes mapping between two embedding spaces": the query encoder's
space X and the document encoder's space Y are never trained jointly; a map X -> Y is fitted on
training pairs and queries are scored by cosine against the documents.

- `least_squares`: W = pinv(Xc) Yc (minimum-norm least squares, any dimensions).
- `orthogonal`: W = U V^T from the SVD of Xc^T Yc (a rotation; needs equal dimensions, so the larger
  side is first reduced to the smaller dimension by PCA fitted on its training vectors).

Scores are cosines in the *comparison space*: the document space, centred on the training mean when
`center` is set, and PCA-reduced when the document side was the larger one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lsr.dense.cosine import cosine_scores
from lsr.errors import InvalidInputError
from lsr.vectors import l2_normalise

KINDS = ("least_squares", "orthogonal")
CONFIG_FILE = "procrustes.json"
ARRAYS_FILE = "procrustes.npz"
_SIDES = {"x": "query", "y": "document"}


def _pca_components(z: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """The top-k right singular vectors of `z` (k x d, sign-fixed) and the share of energy they keep."""
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    if vt.shape[0] < k:
        raise InvalidInputError(f"PCA to {k} dimensions needs at least {k} training pairs; got {z.shape[0]}.")
    comps = vt[:k]
    signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    energy = float((s[:k] ** 2).sum() / max((s**2).sum(), np.finfo(float).tiny))
    return comps, energy


class ProcrustesMap:
    """A linear map from query space X into document space Y, fitted in closed form."""

    def __init__(self, kind: str = "orthogonal", center: bool = True, normalise: bool = True):
        if kind not in KINDS:
            raise InvalidInputError(f"Unknown kind {kind!r}; choose one of {KINDS}.")
        self.kind = kind
        self.center = center
        self.normalise = normalise
        self.W: np.ndarray | None = None
        self.mean_x: np.ndarray | None = None
        self.mean_y: np.ndarray | None = None
        self.pca_x: np.ndarray | None = None
        self.pca_y: np.ndarray | None = None
        self.reduced: dict | None = None
        self.in_dim: int | None = None
        self.out_dim: int | None = None
        self.n_train: int = 0

    # -- fitting ---------------------------------------------------------------------------------
    def _base(self, v: np.ndarray, name: str) -> np.ndarray:
        v = np.atleast_2d(np.asarray(v))
        if self.normalise:
            v = l2_normalise(v, name)
        return v.astype(np.float64)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "ProcrustesMap":
        """Fit on row-aligned pairs: X (n x dx) query-space vectors, Y (n x dy) document-space vectors."""
        X, Y = self._base(X, "query-space training vectors"), self._base(Y, "document-space training vectors")
        if len(X) != len(Y):
            raise InvalidInputError(f"X has {len(X)} rows but Y has {len(Y)}; pairs must be row-aligned.")
        if len(X) < 2:
            raise InvalidInputError("Fitting a map needs at least 2 training pairs.")
        self.in_dim, self.out_dim, self.n_train = X.shape[1], Y.shape[1], len(X)
        self.mean_x = X.mean(axis=0) if self.center else np.zeros(X.shape[1])
        self.mean_y = Y.mean(axis=0) if self.center else np.zeros(Y.shape[1])
        X, Y = X - self.mean_x, Y - self.mean_y
        self.pca_x = self.pca_y = None
        self.reduced = None
        if self.kind == "orthogonal" and X.shape[1] != Y.shape[1]:
            k = min(X.shape[1], Y.shape[1])
            side = "x" if X.shape[1] > Y.shape[1] else "y"
            big = X if side == "x" else Y
            comps, energy = _pca_components(big, k)
            if side == "x":
                self.pca_x, X = comps, X @ comps.T
            else:
                self.pca_y, Y = comps, Y @ comps.T
            self.reduced = {"side": _SIDES[side], "from": int(big.shape[1]), "to": int(k),
                            "explained_variance": energy}
        if self.kind == "orthogonal":
            u, _, vt = np.linalg.svd(X.T @ Y)
            self.W = u @ vt
        else:
            # lstsq's minimum-norm solution is pinv(X) @ Y, without forming the pseudo-inverse.
            self.W = np.linalg.lstsq(X, Y, rcond=None)[0]
        return self

    # -- applying --------------------------------------------------------------------------------
    def _check(self) -> None:
        if self.W is None:
            raise RuntimeError("ProcrustesMap is not fitted; call fit(X, Y) or load(dir) first.")

    def _centre_and_reduce(self, V: np.ndarray, dim: int, mean: np.ndarray, pca: np.ndarray | None,
                           what: str) -> np.ndarray:
        """Normalise (if set), check the dimension, centre, and PCA-reduce one side's vectors."""
        self._check()
        V = self._base(V, f"{what}-space vectors")
        if V.shape[1] != dim:
            raise InvalidInputError(f"Expected {what} vectors of dimension {dim}, got {V.shape[1]}.")
        V = V - mean
        return V @ pca.T if pca is not None else V

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Query-space vectors mapped into the comparison space (n x comparison dim), float32."""
        X = self._centre_and_reduce(X, self.in_dim, self.mean_x, self.pca_x, "query")
        return (X @ self.W).astype(np.float32)

    def transform_docs(self, Y: np.ndarray) -> np.ndarray:
        """Document-space vectors in the comparison space (centred, PCA-reduced if Y was reduced)."""
        return self._centre_and_reduce(Y, self.out_dim, self.mean_y, self.pca_y, "document").astype(np.float32)

    def scores(self, queries_X: np.ndarray, docs_Y: np.ndarray) -> np.ndarray:
        """(n_queries x n_docs) cosine between mapped queries and documents."""
        return cosine_scores(self.transform(queries_X), self.transform_docs(docs_Y))

    def describe(self) -> str:
        """One line saying what was fitted, including any PCA reduction."""
        name = "orthogonal Procrustes" if self.kind == "orthogonal" else "least-squares map"
        if self.W is None:
            return f"{name} (not fitted)"
        parts = [f"{name} {self.in_dim}->{self.out_dim} fitted on {self.n_train} pairs"]
        if self.reduced:
            r = self.reduced
            parts.append(f"PCA {r['from']}->{r['to']} on the {r['side']} side before orthogonal Procrustes "
                         f"(keeps {100 * r['explained_variance']:.1f}% of the training variance)")
        prep = [s for s, on in (("L2-normalised", self.normalise), ("centred on training means", self.center)) if on]
        if prep:
            parts.append("inputs " + ", ".join(prep))
        return "; ".join(parts)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write `procrustes.npz` (arrays, no pickle) and `procrustes.json` (config) into `directory`."""
        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(
            d / ARRAYS_FILE,
            W=self.W, mean_x=self.mean_x, mean_y=self.mean_y,
            pca_x=self.pca_x if self.pca_x is not None else np.zeros((0, self.in_dim)),
            pca_y=self.pca_y if self.pca_y is not None else np.zeros((0, self.out_dim)),
        )
        config = {"format": 1, "kind": self.kind, "center": self.center, "normalise": self.normalise,
                  "in_dim": self.in_dim, "out_dim": self.out_dim, "n_train": self.n_train, "reduced": self.reduced}
        (d / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "ProcrustesMap":
        """Read a map written by `save`."""
        d = Path(directory)
        config = json.loads((d / CONFIG_FILE).read_text(encoding="utf-8"))
        m = cls(kind=config["kind"], center=config["center"], normalise=config["normalise"])
        with np.load(d / ARRAYS_FILE, allow_pickle=False) as z:
            m.W, m.mean_x, m.mean_y = z["W"], z["mean_x"], z["mean_y"]
            m.pca_x = z["pca_x"] if z["pca_x"].size else None
            m.pca_y = z["pca_y"] if z["pca_y"].size else None
        m.in_dim, m.out_dim = config["in_dim"], config["out_dim"]
        m.n_train, m.reduced = config["n_train"], config["reduced"]
        return m
