"""Filters on what a document is, run inside every backend with the same meaning.

    Filter.of(Prefix("id", "holiday/"), Range("taken", gte="2023-06-01T00:00:00"), Term("camera", ["canon"]))

A `Filter` is an AND of clauses; each clause names one field of the documents' metadata (or ``id``, the
document id) and holds when ANY value of that field satisfies it (a field may hold a list, such as
``camera``); a document without the field never matches. Clauses:

- `Term(field, values)`: the value equals one of `values` (strings exactly, numbers numerically);
- `Prefix(field, prefix)`: a string value starts with `prefix` (``Prefix("id", "2023/")``: a folder and
  every folder below it);
- `Range(field, gte=, gt=, lte=, lt=)`: numbers compared as numbers; strings (the ISO dates of ``taken``)
  compared as strings, which orders ``YYYY-MM-DDTHH:MM:SS`` dates in time. `datetime` / `date` bounds are
  written in that form (a `date` is its midnight).

Only the fields in `FILTER_FIELDS` can be filtered on: each backend must index them (OpenSearch and
Elasticsearch map them in ``mappings/*.json``; the embedded index builds a column per field on the first
filtered search), so an unknown name is an error everywhere rather than a silent "no hits" in one
backend. Backends take a filter as the search option ``filter=`` (`SparseBackend.search`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any, Iterable, Union

from lsr.errors import InvalidInputError

# field -> kind ("keyword": exact strings, "date": ISO date strings, "number"): what backends index.
FILTER_FIELDS: dict[str, str] = {
    "id": "keyword", "path": "keyword", "collection": "keyword",
    "taken": "date", "camera": "keyword", "camera_make": "keyword", "camera_model": "keyword",
    "orientation": "keyword", "file_type": "keyword", "phash": "keyword",
    "width": "number", "height": "number", "file_size": "number", "mtime": "number",
}
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # how `taken` is stored: local time as the camera wrote it, no zone

Scalar = Union[str, int, float]


def date_text(value: dt.date | dt.datetime | str) -> str:
    """A date bound in the stored form (``YYYY-MM-DDTHH:MM:SS``); strings are parsed to check them."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInputError(f"{value!r} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS.") from None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None, microsecond=0).strftime(DATE_FORMAT)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).strftime(DATE_FORMAT)
    raise InvalidInputError(f"{value!r} is not a date.")


def _field(name: str) -> str:
    if name not in FILTER_FIELDS:
        raise InvalidInputError(f"Cannot filter on {name!r}; filterable fields: {', '.join(sorted(FILTER_FIELDS))}.")
    return name


def _scalar(field: str, value: Any) -> Scalar:
    kind = FILTER_FIELDS[field]
    if kind == "date":
        return date_text(value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInputError(f"{field} takes finite numbers, got {value!r}.")
        return value
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} takes strings, got {value!r}.")
    return value


@dataclass(frozen=True)
class Term:
    """The field equals one of `values`."""

    field: str
    values: tuple[Scalar, ...]

    def __init__(self, field: str, values: Scalar | Iterable[Scalar]):
        object.__setattr__(self, "field", _field(field))
        items = [values] if isinstance(values, (str, int, float)) else list(values)
        if not items:
            raise InvalidInputError(f"Term({field!r}) needs at least one value.")
        object.__setattr__(self, "values", tuple(_scalar(field, v) for v in items))

    def test(self, value: Any) -> bool:
        return any(_equal(value, v) for v in self.values)


@dataclass(frozen=True)
class Prefix:
    """A string field starts with `prefix`."""

    field: str
    prefix: str

    def __post_init__(self) -> None:
        _field(self.field)
        if FILTER_FIELDS[self.field] != "keyword" or not isinstance(self.prefix, str) or not self.prefix:
            raise InvalidInputError(f"Prefix needs a keyword field and a non-empty string, got {self.field}={self.prefix!r}.")

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith(self.prefix)


@dataclass(frozen=True)
class Range:
    """Bounds on a number or a date (each optional; at least one)."""

    field: str
    gte: Scalar | None = None
    gt: Scalar | None = None
    lte: Scalar | None = None
    lt: Scalar | None = None

    def __post_init__(self) -> None:
        _field(self.field)
        if FILTER_FIELDS[self.field] == "keyword":
            raise InvalidInputError(f"Range needs a number or date field; {self.field} is a keyword.")
        for name in ("gte", "gt", "lte", "lt"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _scalar(self.field, value))
        if self.bounds() == {}:
            raise InvalidInputError(f"Range({self.field!r}) needs a bound (gte, gt, lte or lt).")

    def bounds(self) -> dict[str, Scalar]:
        return {k: v for k, v in (("gte", self.gte), ("gt", self.gt), ("lte", self.lte), ("lt", self.lt)) if v is not None}

    def test(self, value: Any) -> bool:
        numeric = FILTER_FIELDS[self.field] == "number"
        if numeric != (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return False
        if not numeric and not isinstance(value, str):
            return False
        b = self.bounds()
        return (("gte" not in b or value >= b["gte"]) and ("gt" not in b or value > b["gt"])
                and ("lte" not in b or value <= b["lte"]) and ("lt" not in b or value < b["lt"]))


Clause = Union[Term, Prefix, Range]


@dataclass(frozen=True)
class Filter:
    """All `clauses` hold (an empty filter keeps every document)."""

    clauses: tuple[Clause, ...] = ()

    @classmethod
    def of(cls, *clauses: Clause) -> "Filter":
        for c in clauses:
            if not isinstance(c, (Term, Prefix, Range)):
                raise InvalidInputError(f"A filter clause is a Term, Prefix or Range, got {type(c).__name__}.")
        return cls(tuple(clauses))

    def __and__(self, other: "Filter") -> "Filter":
        return Filter(self.clauses + other.clauses)

    def __bool__(self) -> bool:
        return bool(self.clauses)

    def fields(self) -> set[str]:
        return {c.field for c in self.clauses}

    def matches(self, doc_id: str, metadata: dict[str, Any] | None) -> bool:
        """The reference meaning, one document at a time (backends compute the same, in bulk)."""
        return all(any(c.test(v) for v in field_values(doc_id, metadata, c.field)) for c in self.clauses)


def field_values(doc_id: str, metadata: dict[str, Any] | None, field: str) -> list[Any]:
    """The values a clause on `field` sees for one document (a list field gives each element)."""
    if field == "id":
        return [doc_id]
    value = (metadata or {}).get(field)
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def _equal(value: Any, wanted: Scalar) -> bool:
    if isinstance(wanted, str) or isinstance(value, str):
        return value == wanted
    return isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) == float(wanted)


def check_filter(value: Any) -> "Filter | None":
    """The `filter=` search option, checked: a `Filter` (an empty one counts as none) or None."""
    if value is None:
        return None
    if not isinstance(value, Filter):
        raise InvalidInputError(f"filter= takes an lsr Filter (lsr.backends.filters), got {type(value).__name__}.")
    return value or None


__all__ = ["DATE_FORMAT", "FILTER_FIELDS", "Filter", "Prefix", "Range", "Term", "check_filter", "date_text",
           "field_values"]
