"""Filters in OpenSearch and Elasticsearch: a `Filter` (`lsr.backends.filters`) becomes ``filter`` clauses of
a ``bool`` query around the sparse query, so the engine filters while it scores (non-scoring clauses: the
scores stay the sparse dot product, and the top k are the best k documents the filter allows).

Both engines speak the same query DSL for these clauses: ``term`` / ``terms`` on keyword fields,
``prefix``, and ``range`` (dates on a ``date`` field, numbers on ``long`` / ``double`` fields). Field
names follow how documents are stored (`lsr.backends.remote`): ``id`` and the top-level metadata
(``path``, ``caption``, ``collection``) as they are, every other key under ``meta.``. The photo fields
are mapped in ``mappings/*.json``; an index made before they were (or a field it does not map) is a
clear error rather than a search that silently finds nothing.
"""

from __future__ import annotations

from typing import Any

from lsr.backends.filters import Filter, Prefix, Range, Term
from lsr.errors import InvalidInputError

TOP_LEVEL = ("id", "path", "caption", "collection")


def field_path(field: str) -> str:
    return field if field in TOP_LEVEL else f"meta.{field}"


def clause_dsl(clause: Term | Prefix | Range) -> dict:
    path = field_path(clause.field)
    if isinstance(clause, Prefix):
        return {"prefix": {path: {"value": clause.prefix}}}
    if isinstance(clause, Term):
        return {"terms": {path: list(clause.values)}}
    return {"range": {path: clause.bounds()}}


def mapped_fields(mapping: dict) -> set[str]:
    """Dotted paths of the fields a mapping indexes (``meta.taken`` ...)."""
    out: set[str] = set()

    def walk(props: dict, prefix: str) -> None:
        for name, spec in props.items():
            path = f"{prefix}{name}"
            if "properties" in spec:
                walk(spec["properties"], path + ".")
            elif spec.get("type") not in (None, "object") and spec.get("index", True) is not False:
                out.add(path)

    walk(mapping.get("properties", {}), "")
    return out


def filtered(index: Any, query: dict, flt: Filter | None) -> dict:
    """`query` with `flt` as non-scoring filter clauses (unchanged without a filter); checks once per index
    object that the engine maps every field the filter names."""
    if not flt:
        return query
    fields = getattr(index, "_filter_fields", None)
    if fields is None:
        mapping = index.client.indices.get_mapping(index=index.index_name)[index.index_name]["mappings"]
        fields = mapped_fields(dict(mapping))
        index._filter_fields = fields
    missing = sorted(field_path(f) for f in flt.fields() if field_path(f) not in fields)
    if missing:
        raise InvalidInputError(f"The index {index.index_name!r} does not index {', '.join(missing)}, so it cannot "
                                "filter on it: it was made before photo filters existed. Re-index the folder into a "
                                "new index (lsr index-images FOLDER --index ... --overwrite).")
    return {"bool": {"must": [query], "filter": [clause_dsl(c) for c in flt.clauses]}}
