"""Filters in the embedded index: which rows a `Filter` allows, applied to the scores before the top-k cut.

A filtered search scores as usual and zeroes the scores of the rows the filter rules out before choosing
the top k, so it returns k hits whenever k matching documents score above zero (a filter applied after
cutting to k would return fewer). The allowed rows come from columns of the metadata store: on the first
filter on a field, each row's JSON metadata is read once into (row, value) pairs (numbers and strings
apart, list values flattened); later writes append to the column, compaction or a reload rebuilds it. The
meaning of each clause is `lsr.backends.filters` (`Filter.matches`), computed here with numpy.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

import numpy as np

from lsr.backends.filters import FILTER_FIELDS, Filter, Prefix, Range, Term, field_values

EmbeddedIndex = Any  # the index whose `_meta` (row -> JSON metadata) and `_ids` (`IdTable`) are read


class _Column:
    """(row, value) pairs of one field: numbers in one pair of arrays, strings in another."""

    def __init__(self) -> None:
        self.rows_done = 0
        self._num_rows: list[int] = []
        self._num: list[float] = []
        self._str_rows: list[int] = []
        self._str: list[str] = []
        self.arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def extend(self, index: "EmbeddedIndex", field: str, upto: int) -> None:
        meta = index._meta
        ids = index._ids.ids_of(range(self.rows_done, upto)) if field == "id" else None
        for offset, row in enumerate(range(self.rows_done, upto)):
            if field == "id":
                values = [ids[offset]]
            else:
                raw = meta[row]
                values = field_values("", json.loads(raw), field) if raw is not None else []
            for v in values:
                if isinstance(v, str):
                    self._str_rows.append(row)
                    self._str.append(v)
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._num_rows.append(row)
                    self._num.append(float(v))
        self.rows_done = upto
        self.arrays = (np.asarray(self._num_rows, dtype=np.int64), np.asarray(self._num, dtype=np.float64),
                       np.asarray(self._str_rows, dtype=np.int64), np.asarray(self._str, dtype=str))


class _Columns:
    def __init__(self, meta_list: list) -> None:
        self.meta_id = id(meta_list)
        self.fields: dict[str, _Column] = {}


_CACHE: "weakref.WeakKeyDictionary[Any, _Columns]" = weakref.WeakKeyDictionary()


def _column(index: "EmbeddedIndex", field: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cols = _CACHE.get(index)
    if cols is None or cols.meta_id != id(index._meta):  # compaction or a reload replaced the rows
        cols = _Columns(index._meta)
        _CACHE[index] = cols
    column = cols.fields.setdefault(field, _Column())
    n = len(index._meta)
    if column.rows_done > n:  # rows only ever grow in place; fewer means a new store
        column = cols.fields[field] = _Column()
    if column.rows_done < n or column.arrays is None:
        column.extend(index, field, n)
    return column.arrays


def allowed_rows(index: "EmbeddedIndex", flt: Filter | None, n_rows: int) -> np.ndarray | None:
    """A boolean mask over the first `n_rows` rows: True where every clause holds (None: no filter)."""
    if not flt:
        return None
    allowed = np.ones(n_rows, dtype=bool)
    size = max(n_rows, len(index._meta))
    for clause in flt.clauses:
        num_rows, num, str_rows, strs = _column(index, clause.field)
        hit = np.zeros(size, dtype=bool)
        if isinstance(clause, Prefix):
            if strs.size:
                hit[str_rows[np.char.startswith(strs, clause.prefix)]] = True
        elif isinstance(clause, Term):
            words = [v for v in clause.values if isinstance(v, str)]
            numbers = [float(v) for v in clause.values if not isinstance(v, str)]
            if words and strs.size:
                hit[str_rows[np.isin(strs, np.asarray(words, dtype=str))]] = True
            if numbers and num.size:
                hit[num_rows[np.isin(num, np.asarray(numbers))]] = True
        elif isinstance(clause, Range):
            numeric = FILTER_FIELDS[clause.field] == "number"
            rows, values = (num_rows, num) if numeric else (str_rows, strs)
            if values.size:
                keep = np.ones(values.size, dtype=bool)
                for op, bound in clause.bounds().items():
                    bound = float(bound) if numeric else np.str_(bound)
                    keep &= {"gte": values >= bound, "gt": values > bound, "lte": values <= bound,
                             "lt": values < bound}[op]
                hit[rows[keep]] = True
        allowed &= hit[:n_rows]
    return allowed
