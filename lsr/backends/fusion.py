"""Hybrid sparse + dense fusion with the formulas of OpenSearch's neural-search search pipelines.

A hybrid query runs two sub-queries (sparse dot product, dense k-NN); each returns its own top
`depth` documents with its own scores. The fusion then combines them per document:

- ``normalization-processor``: each sub-query's scores are normalised over *its own result list*,
  then combined by a weighted arithmetic mean, sum_i w_i * n_i / sum_i w_i, where a document that a
  sub-query did not return contributes 0 for it.
  - ``min_max``: (s - min) / (max - min); a result that lands on 0 becomes 0.001 (OpenSearch's floor,
    so it still counts as found); a list whose scores are all equal normalises to 1.
  - ``l2``: s / sqrt(sum of squares).
  - ``z_score``: (s - mean) / std with the sample std; a result at or below the mean becomes 0.001 (a
    score equal to the mean takes the list's raw maximum, and a list with std 0 its raw minimum: the
    engine's edge cases, kept for parity).
- ``score-ranker-processor`` with ``rrf``: sum_i 1 / (rank_constant + rank_i), rank from 1, over the
  sub-queries that returned the document (rank_constant 60).

The dense sub-query's score is the k-NN plugin's for ``cosinesimil`` on Lucene: (1 + cos) / 2. Checked
against a live node by ``tests/test_search_modes.py`` (min_max, l2, z_score and rrf on the same lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from lsr.errors import InvalidInputError

if TYPE_CHECKING:  # numpy loads with the first fusion, not with the names (the command line reads them)
    import numpy as np

NORMALIZATIONS = ("min_max", "l2", "z_score")
TECHNIQUES = NORMALIZATIONS + ("rrf",)
MIN_MAX_FLOOR = 0.001
RRF_RANK_CONSTANT = 60


@dataclass(frozen=True)
class Fusion:
    """How to fuse: `technique` (min_max / l2 / z_score / rrf) and, for the normalisations, the
    weight of the sparse part (the dense part gets 1 - weight)."""

    technique: str = "min_max"
    sparse_weight: float = 0.5
    rank_constant: int = RRF_RANK_CONSTANT

    def __post_init__(self) -> None:
        if self.technique not in TECHNIQUES:
            raise InvalidInputError(f"Unknown fusion technique {self.technique!r}; choose one of {', '.join(TECHNIQUES)}.")
        if not 0.0 <= self.sparse_weight <= 1.0:
            raise InvalidInputError(f"The sparse weight must lie in [0, 1], got {self.sparse_weight}.")
        if self.rank_constant < 1:
            raise InvalidInputError(f"rank_constant must be at least 1, got {self.rank_constant}.")

    @property
    def weights(self) -> tuple[float, float]:
        return self.sparse_weight, 1.0 - self.sparse_weight

    def label(self) -> str:
        return "rrf" if self.technique == "rrf" else f"{self.technique}:{self.sparse_weight:g}"

    @classmethod
    def parse(cls, spec: "str | Fusion") -> "Fusion":
        """``"rrf"``, ``"min_max"`` (weight 0.5) or ``"min_max:0.3"`` (sparse weight 0.3)."""
        if isinstance(spec, Fusion):
            return spec
        name, _, weight = str(spec).partition(":")
        if name == "rrf":
            if weight:
                raise InvalidInputError("rrf takes no weight; write --hybrid rrf.")
            return cls("rrf")
        try:
            return cls(name, float(weight) if weight else 0.5)
        except ValueError as err:
            if weight and not _is_number(weight):
                raise InvalidInputError(f"Hybrid spec {spec!r}: the weight {weight!r} is not a number (e.g. min_max:0.3).") from err
            raise


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def normalise(scores: np.ndarray, technique: str) -> np.ndarray:
    """One sub-query's result-list scores, normalised as OpenSearch does (float32 like the engine)."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float32)
    if s.size == 0:
        return s
    if technique == "min_max":
        lo, hi = s.min(), s.max()
        if hi == lo:
            return np.ones_like(s)
        out = (s - lo) / (hi - lo)
        return np.where(out == 0, np.float32(MIN_MAX_FLOOR), out).astype(np.float32)
    if technique == "l2":
        norm = np.float32(np.sqrt(np.sum(s.astype(np.float64) ** 2)))
        return s / norm if norm > 0 else np.zeros_like(s)
    if technique == "z_score":  # sample std (commons-math DescriptiveStatistics), as neural-search uses
        mean = np.float32(s.mean(dtype=np.float64))
        std = np.float32(s.std(dtype=np.float64, ddof=1)) if s.size > 1 else np.float32(0)
        if std == 0:
            return np.where(s == mean, s.max(), s.min()).astype(np.float32)
        z = (s - mean) / std
        return np.where(s == mean, s.max(), np.where(z <= 0, np.float32(MIN_MAX_FLOOR), z)).astype(np.float32)
    raise InvalidInputError(f"Unknown normalisation {technique!r}; choose one of {', '.join(NORMALIZATIONS)}.")


def fuse(results: Sequence[Mapping[str, float]], fusion: Fusion) -> dict[str, float]:
    """Fused score per document id from each sub-query's {id: score} result list (sparse first)."""
    import numpy as np

    if len(results) != 2:
        raise InvalidInputError("Hybrid fusion takes two result lists: sparse, then dense.")
    fused: dict[str, float] = {}
    if fusion.technique == "rrf":
        for result in results:
            ranked = sorted(result.items(), key=lambda kv: -kv[1])
            for rank, (doc_id, _) in enumerate(ranked, start=1):
                fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (fusion.rank_constant + rank)
        return fused
    total = sum(fusion.weights)
    for result, weight in zip(results, fusion.weights):
        ids = list(result)
        for doc_id, n in zip(ids, normalise(np.array([result[i] for i in ids]), fusion.technique).tolist()):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * n / total
    return fused


def knn_score(cosine: np.ndarray) -> np.ndarray:
    """The k-NN plugin's score for ``cosinesimil``: (1 + cos) / 2."""
    import numpy as np

    return (1.0 + np.asarray(cosine, dtype=np.float32)) / 2.0
