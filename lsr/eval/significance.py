"""Is one system's R@K really above or below another's on the same queries? Paired tests on TREC run files.

R@K is the mean of a per-query hit (1 when a relevant item is in the top K), so two systems ranked for the
same queries are compared query by query:

- exact McNemar test: of the queries where exactly one of the two hits, is the split further from 50 / 50
  than chance allows (two-sided binomial test)? It needs 0 / 1 hits, so one run per side.
- paired bootstrap: the queries drawn with replacement `samples` times; the middle `level` of the resampled
  differences in R@K is the interval (percentile bootstrap, seeded).

Queries judged relevant to the same items (the captions of one image, as text->image queries) are not
independent draws. By default they form one cluster (`relevance_clusters`): the bootstrap draws whole
clusters, and McNemar becomes the clustered test of Durkalski et al. (2003), chi-square on the per-cluster
differences of discordant counts. Where every cluster is one query (image->text) both reduce to the plain
tests above, with the same numbers.

Several runs of one system (seeds) are averaged query by query first, so the interval then reflects the
seed-averaged system; McNemar is left out there (the per-query values are no longer 0 / 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.stats import binomtest, chi2

from lsr.errors import InvalidInputError
from lsr.eval.metrics import KS
from lsr.eval.trec import read_qrels, read_ranking


def hits_at(ranking: dict[str, list[str]], qrels: dict[str, set[str]], k: int, name: str = "run") -> np.ndarray:
    """Per-query hit at K (bool), over the qrels' queries in sorted order; a query the run lacks is a miss
    (as trec_eval -c). A run with queries the qrels do not judge is the wrong pairing, and a run shallower
    than K cannot give R@K: both are errors."""
    unknown = set(ranking) - set(qrels)
    if unknown:
        raise InvalidInputError(f"{name} ranks {len(unknown)} queries the qrels do not judge (e.g. {sorted(unknown)[0]!r}): "
                         "pair each run with the qrels of its split and direction.")
    depth = max((len(docs) for docs in ranking.values()), default=0)
    if k > depth:
        raise InvalidInputError(f"R@{k} needs {k} ranked documents per query but {name} holds at most {depth}: "
                         f"use K <= {depth} or write a deeper run.")
    return np.array([bool(set(ranking.get(q, [])[:k]) & qrels[q]) for q in sorted(qrels)])


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value of paired 0 / 1 outcomes (1.0 when the two never disagree)."""
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def relevance_clusters(qrels: dict[str, set[str]]) -> np.ndarray:
    """Cluster number per query (the qrels' queries in sorted order): queries judged relevant to the same set
    of items share one, numbered by first appearance (so all-distinct sets give 0, 1, 2, ...)."""
    numbers: dict[frozenset[str], int] = {}
    return np.array([numbers.setdefault(frozenset(qrels[q]), len(numbers)) for q in sorted(qrels)])


def _check_paired(a: np.ndarray, b: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """The cluster numbers (0..C-1, one per query; each query its own when None) after checking the shapes."""
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise InvalidInputError(f"Paired outcomes need two equal non-empty 1-d arrays, got {a.shape} and {b.shape}.")
    if clusters is None:
        return np.arange(len(a))
    if clusters.shape != a.shape:
        raise InvalidInputError(f"clusters needs one number per query ({a.shape}), got {clusters.shape}.")
    return np.unique(clusters, return_inverse=True)[1]


def clustered_mcnemar_p(a: np.ndarray, b: np.ndarray, clusters: np.ndarray) -> float:
    """McNemar p for paired 0 / 1 outcomes in clusters (Durkalski et al. 2003): with d_c = (queries only A
    hits) - (queries only B hits) in cluster c, X^2 = (sum d_c)^2 / sum d_c^2 on one degree of freedom.
    With one query per cluster this is the asymptotic McNemar test; `mcnemar_p` is the exact one."""
    cluster = _check_paired(a, b, clusters)
    d = np.bincount(cluster, weights=(a & ~b).astype(np.float64) - (~a & b).astype(np.float64))
    if not np.any(d):
        return 1.0
    return float(chi2.sf(d.sum() ** 2 / np.sum(d ** 2), df=1))


def bootstrap_interval(a: np.ndarray, b: np.ndarray, samples: int = 10_000, seed: int = 0,
                       level: float = 0.95, clusters: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile-bootstrap interval of mean(a) - mean(b) in points (x100), resampling queries in pairs, or
    with `clusters` (a number per query) whole clusters, the difference then the resampled queries' mean."""
    cluster = _check_paired(a, b, clusters)
    if not 0 < level < 1:
        raise InvalidInputError(f"level must be in (0, 1), got {level}.")
    if samples < 1:
        raise InvalidInputError(f"samples must be >= 1, got {samples}.")
    sums = np.bincount(cluster, weights=a.astype(np.float64) - b.astype(np.float64))
    sizes = np.bincount(cluster).astype(np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 1000):  # 1000 resamples at a time: bounded memory for large query sets
        n = min(1000, samples - start)
        drawn = rng.integers(0, len(sums), size=(n, len(sums)))
        means[start:start + n] = sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return 100.0 * float(low), 100.0 * float(high)


@dataclass
class Comparison:
    metric: str
    a: float  # R@K of system A (the mean over its runs), in points
    b: float
    diff: float  # a - b
    low: float  # the bootstrap interval of the difference
    high: float
    mcnemar_p: float | None  # None when A is several runs (averaged per query)
    queries: int
    runs_a: int
    clusters: int  # the units the bootstrap resamples: queries, or groups of queries with the same relevant items


def compare_runs(runs_a: Sequence[str | Path], run_b: str | Path, qrels: str | Path, ks: Sequence[int] = KS,
                 samples: int = 10_000, seed: int = 0, level: float = 0.95,
                 cluster: bool = True) -> list[Comparison]:
    """R@K of system A (one run, or several averaged per query) against system B, per K, with paired tests;
    `cluster` resamples and tests queries that share their relevant items together (`relevance_clusters`)."""
    if not runs_a:
        raise InvalidInputError("Give at least one run of system A.")
    judged = read_qrels(qrels)
    rankings_a = [(str(p), read_ranking(p)) for p in runs_a]
    ranking_b = read_ranking(run_b)
    clusters = relevance_clusters(judged) if cluster else np.arange(len(judged))
    units = int(clusters.max()) + 1  # numbered 0..C-1 either way
    out = []
    for k in ks:
        if k < 1:
            raise InvalidInputError(f"K must be >= 1, got {k}.")
        per_run = np.stack([hits_at(r, judged, k, name) for name, r in rankings_a])
        a = per_run.mean(axis=0)
        b = hits_at(ranking_b, judged, k, str(run_b))
        low, high = bootstrap_interval(a, b, samples, seed, level, clusters)
        p = None
        if len(runs_a) == 1:
            p = clustered_mcnemar_p(per_run[0], b, clusters) if units < len(clusters) else mcnemar_p(per_run[0], b)
        out.append(Comparison(f"R@{k}", 100 * float(a.mean()), 100 * float(b.mean()),
                              100 * float(a.mean() - b.mean()), low, high, p, len(a), len(runs_a), units))
    return out


def format_comparisons(rows: Sequence[Comparison], level: float = 0.95) -> str:
    """A plain-text table of `compare_runs` rows."""
    head = f"{'metric':<7}{'A':>7}{'B':>7}{'A-B':>7}  {f'{level:.0%} interval':<17}McNemar p"
    lines = [head]
    for r in rows:
        p = "-" if r.mcnemar_p is None else "<0.001" if r.mcnemar_p < 1e-3 else f"{r.mcnemar_p:.3f}"
        interval = f"[{r.low:+.1f}, {r.high:+.1f}]"
        lines.append(f"{r.metric:<7}{r.a:7.1f}{r.b:7.1f}{r.diff:+7.1f}  {interval:<17}{p}")
    return "\n".join(lines)


def as_dicts(rows: Sequence[Comparison]) -> list[dict]:
    return [asdict(r) for r in rows]
