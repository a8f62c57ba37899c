"""Scoring modes as small typed values, one per search call.

    searcher.search("a dog", mode=Rerank("dense", candidates=100))     # two-stage
    searcher.search("a dog", mode=Hybrid("min_max", weight=0.3))        # sparse + dense fusion
    searcher.search("a dog", mode=SetScoring("max"))                    # a set index's aggregation
    searcher.search("a dog", mode="hybrid:min_max:0.3")                 # the same, as a string shorthand

`Retrieval` picks how the backend finds the sparse candidates (exact, OpenSearch's two-phase pipeline or
approximate search) and is orthogonal to the mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Union

from lsr.backends.fusion import TECHNIQUES, Fusion
from lsr.errors import InvalidInputError

RERANKERS = ("dense", "late", "itm")
AGGREGATIONS = ("max", "sum", "avg")
METHODS = ("exact", "two_phase", "ann")


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")


@dataclass(frozen=True)
class Rerank:
    """Two stages: the sparse top `candidates`, re-scored by `by`: ``dense`` (the frozen model's cosine,
    inside the backend), ``late`` (token-level late interaction) or ``itm`` (an image-text matching head)."""

    by: Literal["dense", "late", "itm"] = "dense"
    candidates: int = 100

    def __post_init__(self) -> None:
        if self.by not in RERANKERS:
            raise InvalidInputError(f"Unknown re-ranker {self.by!r}; choose one of {', '.join(RERANKERS)}.")
        _positive("candidates", self.candidates)


@dataclass(frozen=True)
class Hybrid:
    """Sparse and dense search each return their top `depth`, fused as OpenSearch's search pipelines fuse
    them: ``min_max`` / ``l2`` / ``z_score`` with `weight` on the sparse part, or ``rrf`` (no weight)."""

    technique: Literal["min_max", "l2", "z_score", "rrf"] = "min_max"
    weight: float = 0.5
    depth: int = 100

    def __post_init__(self) -> None:
        if self.technique not in TECHNIQUES:
            raise InvalidInputError(f"Unknown fusion {self.technique!r}; choose one of {', '.join(TECHNIQUES)}.")
        self.fusion  # noqa: B018 - validates the weight
        _positive("depth", self.depth)

    @property
    def fusion(self) -> Fusion:
        try:
            return Fusion("rrf") if self.technique == "rrf" else Fusion(self.technique, float(self.weight))
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None


@dataclass(frozen=True)
class SetScoring:
    """A set index's scoring: each document's member scores combined by `members`; a query given as
    several phrasings (a query set) has their set scores combined by `phrasings`."""

    members: Literal["max", "sum", "avg"] = "max"
    phrasings: Literal["max", "sum", "avg"] = "sum"

    def __post_init__(self) -> None:
        for name, value in (("members", self.members), ("phrasings", self.phrasings)):
            if value not in AGGREGATIONS:
                raise InvalidInputError(f"SetScoring {name}={value!r}; choose one of {', '.join(AGGREGATIONS)}.")


@dataclass(frozen=True)
class Retrieval:
    """How the backend finds sparse candidates: ``exact`` (every backend), ``two_phase`` (heaviest query
    terms first, then the rest; OpenSearch's neural_sparse_two_phase_processor) or ``ann`` (a seismic
    index). `parameters` go to the backend as they are (OpenSearch: ``method_parameters``)."""

    method: Literal["exact", "two_phase", "ann"] = "exact"
    parameters: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInputError(f"Unknown retrieval method {self.method!r}; choose one of {', '.join(METHODS)}.")

    def backend_options(self) -> dict[str, Any]:
        """The keyword options of `SparseBackend.search` (none for plain exact search)."""
        options: dict[str, Any] = {} if self.method == "exact" else {"mode": self.method}
        if self.parameters:
            options["method_parameters"] = dict(self.parameters)
        return options


Mode = Union[Rerank, Hybrid, SetScoring]


def parse_mode(spec: "Mode | str | None") -> Mode | None:
    """A mode from its string shorthand: ``"sparse"`` (None), ``"rerank"``, ``"rerank:late"``,
    ``"rerank:dense:200"``, ``"hybrid"``, ``"hybrid:rrf"``, ``"hybrid:min_max:0.3"``, ``"sets:max"``,
    ``"sets:max:sum"``; a mode value is returned as it is."""
    if spec is None or isinstance(spec, (Rerank, Hybrid, SetScoring)):
        return spec
    if not isinstance(spec, str):
        raise InvalidInputError(f"mode must be Rerank, Hybrid, SetScoring or a string such as 'hybrid:rrf', "
                                f"got {type(spec).__name__}.")
    name, *parts = spec.strip().split(":")
    try:
        if name in ("", "sparse", "exact") and not parts:
            return None
        if name == "rerank" and len(parts) <= 2:
            by = parts[0] if parts else "dense"
            return Rerank(by, int(parts[1])) if len(parts) == 2 else Rerank(by)  # type: ignore[arg-type]
        if name == "hybrid" and len(parts) <= 2:
            if parts and parts[0] not in TECHNIQUES:  # "hybrid:0.3": a weight for the default technique
                parts = ["min_max", *parts]
            technique = parts[0] if parts else "min_max"
            return Hybrid(technique, float(parts[1])) if len(parts) == 2 else Hybrid(technique)  # type: ignore[arg-type]
        if name == "sets" and len(parts) <= 2:
            return SetScoring(*parts)  # type: ignore[arg-type]
    except ValueError as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"Mode {spec!r}: {exc}; e.g. 'rerank:dense:100' or 'hybrid:min_max:0.3'.") from None
    raise InvalidInputError(f"Unknown mode {spec!r}; write 'sparse', 'rerank[:dense|late|itm[:N]]', "
                            "'hybrid[:min_max|l2|z_score|rrf[:W]]' or 'sets[:max|sum|avg]'.")
