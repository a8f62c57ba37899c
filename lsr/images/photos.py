"""Photo collections, the pieces the search page, the command line and Python share: the filter of what a
photo is (`photo_filter`), the measured score floors (`score_floor`) and near-duplicate folding of a page
of hits (`collapse_hits`). `lsr.app.folders` and `lsr.app.duplicates` re-export them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from lsr.errors import InvalidInputError

if TYPE_CHECKING:
    from lsr.backends.base import Hit
    from lsr.backends.filters import Filter

DEFAULT_MAX_DISTANCE = 12  # bits of 64 (the perceptual hash), chosen in results/photo_duplicates.json
# encoder -> {"text" | "image": the lowest score of a good match}; how each was chosen:
# docs/guides/photo-collections.md and results/photo_score_floor.json (benchmarks/bench_photos.py)
_LABEL_TOKENS = {"text": 0.0709, "image": 0.0282}
SCORE_FLOORS: dict[str, dict[str, float]] = {"efficientnet-labels": _LABEL_TOKENS,  # by --encoder and by provenance name
                                             "efficientnet-lite0-labels-tf-lite": _LABEL_TOKENS}


def photo_filter(*, folder: str | Path | None = None, taken_after: object = None, taken_before: object = None,
                 camera: str | None = None, orientation: str | None = None, file_type: str | None = None,
                 min_width: int | None = None, min_height: int | None = None,
                 root: str | Path | None = None) -> "Filter | None":
    """The `Filter` of what a photo is (None when nothing is asked), as `lsr search-images` and the page take it.

    `folder`: a folder inside the indexed one and every folder below it (relative, or absolute under
    `root`); `taken_after` / `taken_before`: the day (or moment) taken, on or after / strictly before
    (``YYYY-MM-DD`` or a date / datetime); `camera`: the make or the model, any case (``canon``,
    ``canon eos 5d``); `orientation`: landscape, portrait or square; `file_type`: jpeg, png, ... ;
    `min_width` / `min_height` in pixels, after EXIF orientation.
    """
    from lsr.backends.filters import Filter, Prefix, Range, Term

    clauses: list = []
    if folder not in (None, "", "."):
        relative = Path(folder)
        if relative.is_absolute():
            if root is None or not relative.resolve().is_relative_to(Path(root).resolve()):
                raise InvalidInputError(f"Folder {folder} is not inside the indexed folder {root}; give a folder "
                                        "relative to it.")
            relative = relative.resolve().relative_to(Path(root).resolve())
        prefix = relative.as_posix().strip("/")
        if prefix.startswith("..") or not prefix:
            raise InvalidInputError(f"Folder {folder!r} does not name a folder inside the indexed one.")
        if prefix != ".":
            clauses.append(Prefix("id", prefix + "/"))
    if taken_after is not None or taken_before is not None:
        clauses.append(Range("taken", gte=taken_after, lt=taken_before))
    if camera:
        clauses.append(Term("camera", camera.strip().lower()))
    if orientation:
        if orientation not in ("landscape", "portrait", "square"):
            raise InvalidInputError(f"orientation is landscape, portrait or square, not {orientation!r}.")
        clauses.append(Term("orientation", orientation))
    if file_type:
        kind = file_type.strip().lower().lstrip(".")
        clauses.append(Term("file_type", {"jpg": "jpeg", "tif": "tiff"}.get(kind, kind)))
    if min_width:
        clauses.append(Range("width", gte=int(min_width)))
    if min_height:
        clauses.append(Range("height", gte=int(min_height)))
    return Filter.of(*clauses) if clauses else None


def score_floor(encoder_name: str | None, query: str = "text") -> float | None:
    """The documented score floor of an image encoder (`SCORE_FLOORS`) for a text or an image query: below
    it a hit is no good match, and a search that finds none says so (None: no floor known)."""
    return SCORE_FLOORS.get(encoder_name or "", {}).get(query)


def collapse_hits(hits: Sequence["Hit"], max_distance: int = DEFAULT_MAX_DISTANCE) -> list[tuple["Hit", list[str]]]:
    """Hits with their near-duplicates folded in: (the best-ranked hit of a group, the ids of the others
    among these hits), in rank order. Hits without a hash stand alone."""
    out: list[tuple["Hit", list[str]]] = []
    heads: list[int] = []  # hash of each group's first hit
    for hit in hits:
        value = (hit.metadata or {}).get("phash")
        if value:
            h = int(value, 16)
            for g, head in enumerate(heads):
                if head >= 0 and (h ^ head).bit_count() <= max_distance:
                    out[g][1].append(hit.id)
                    break
            else:
                heads.append(h)
                out.append((hit, []))
            continue
        heads.append(-1)
        out.append((hit, []))
    return out
