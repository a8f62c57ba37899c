"""The input rules every backend applies before it touches its store, so the same input gets the same
outcome in the embedded index and in OpenSearch.

Whole-call errors (`ValueError`, nothing is written): ids passed as one bare string, an id repeated
inside one call, ids / vectors / metadata of different lengths, vectors over another vocabulary, `k < 1`.

Per-document failures (reported in `IndexReport.failed` with the reason; the other documents of the
call are indexed): an id that is empty, not a string, not UTF-8 encodable or over 512 bytes (OpenSearch's
``_id`` limit); token ids outside the vocabulary; NaN, inf or negative weights; no weight left that
could ever score (zero weights are absent, weights below float32's smallest normal number, which
OpenSearch's ``rank_features`` rejects, are dropped first); metadata that is not a JSON object.

Queries: token ids outside the vocabulary and negative weights are errors (`ValueError` naming the
token); zero and sub-normal weights are dropped (they cannot change a score); a query of more than
`MAX_QUERY_TERMS` terms keeps its heaviest `MAX_QUERY_TERMS` (ties: the lower token id), which is
OpenSearch's clause limit; the phrasings of a query set share that budget (`prepare_query_set`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np
import scipy.sparse as sp

from lsr.errors import InvalidInputError
from lsr.prune import cap_terms
from lsr.sparse import SparseBatch, SparseVector

# How a set index combines its members' scores (and a query set's phrasings): OpenSearch's nested score modes.
SCORE_MODES = ("max", "sum", "avg")

MAX_ID_BYTES = 512  # OpenSearch's limit on _id
MIN_WEIGHT = float(np.finfo(np.float32).tiny)  # smallest normal float32; rank_features rejects less
MAX_QUERY_TERMS = 1024  # OpenSearch's default indices.query.bool.max_clause_count

DocumentVector = Union[SparseVector, Mapping[int, float]]


@dataclass
class Accepted:
    """The documents of one `index` call that passed the rules, and the reasons of those that did not."""

    ids: list[str]
    vectors: SparseBatch
    metadata: list[dict[str, Any] | None]
    failed: dict[str, str] = field(default_factory=dict)


def check_ids(ids: Sequence[str] | str, what: str = "ids") -> list[str]:
    """`ids` as a list; a bare string or a repeated id is an error for the whole call."""
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError(f"{what} must be a list of strings, not the single string {ids!r}; wrap it: [{ids!r}].")
    ids = list(ids)
    try:
        if set(map(type, ids)) <= {str} and len(set(ids)) == len(ids):  # the common case, at C speed
            return ids
    except TypeError:  # an unhashable id: found below
        pass
    seen: set = set()
    for doc_id in ids:
        key = doc_id if isinstance(doc_id, str) else repr(doc_id)
        if key in seen:
            raise InvalidInputError(f"Document id {doc_id!r} appears twice in one call; pass each id once.")
        seen.add(key)
    return ids


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}.")
    return int(k)


def id_problem(doc_id: object) -> str:
    """Why `doc_id` cannot be a document id, or "" when it can."""
    if not isinstance(doc_id, str) or not doc_id:
        return "the id must be a non-empty string"
    try:
        size = len(doc_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "the id is not valid UTF-8 (it holds a lone surrogate)"
    if size > MAX_ID_BYTES:
        return f"the id is {size} bytes long; the limit is {MAX_ID_BYTES}"
    return ""


def vector_problem(ids: np.ndarray, weights: np.ndarray, vocab_size: int) -> str:
    """Why a document vector cannot be indexed, or "" when it can (weights before sub-normal dropping)."""
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        bad = int(ids[(ids < 0) | (ids >= vocab_size)][0])
        return f"token id {bad} is outside the vocabulary [0, {vocab_size})"
    if not np.all(np.isfinite(weights)):
        return "the vector has NaN or inf weights"
    if np.any(weights < 0):
        bad = int(ids[np.flatnonzero(weights < 0)[0]])
        return f"token {bad} has a negative weight; document weights must be >= 0"
    if not np.any(weights >= MIN_WEIGHT):
        return "the vector has no positive weight, so it could never be retrieved"
    return ""


def metadata_problem(meta: object) -> tuple[dict[str, Any] | None, str]:
    """(metadata as a plain dict, "") or (None, why it cannot be stored)."""
    if meta is None:
        return None, ""
    if not isinstance(meta, Mapping):
        return None, f"metadata must be a mapping, got {type(meta).__name__}"
    try:
        return json.loads(json.dumps(dict(meta), allow_nan=False)), ""
    except (TypeError, ValueError) as exc:
        return None, f"metadata is not JSON-serialisable: {exc}"


def _raw(vector: object) -> tuple[np.ndarray, np.ndarray] | str:
    """(token ids, weights) of a SparseVector or a {token_id: weight} mapping, or why it is neither."""
    if isinstance(vector, SparseVector):
        return vector.ids, vector.weights
    if isinstance(vector, Mapping):
        try:
            ids = np.fromiter((int(t) for t in vector), dtype=np.int64, count=len(vector))
            weights = np.fromiter((float(w) for w in vector.values()), dtype=np.float64, count=len(vector))
        except (TypeError, ValueError):
            return "a {token_id: weight} vector needs integer token ids and numeric weights"
        return ids, weights
    return f"expected a SparseVector or a {{token_id: weight}} mapping, got {type(vector).__name__}"


def _rows(vectors: SparseBatch | Iterable[DocumentVector]) -> list[tuple[np.ndarray, np.ndarray] | str]:
    if isinstance(vectors, SparseBatch):
        csr = vectors.csr
        return [(csr.indices[csr.indptr[i]:csr.indptr[i + 1]], csr.data[csr.indptr[i]:csr.indptr[i + 1]])
                for i in range(len(vectors))]
    return [_raw(v) for v in vectors]


def accept_documents(ids: Sequence[str], vectors: SparseBatch | Sequence[DocumentVector],
                     metadata: Sequence[Mapping[str, Any] | None] | None, vocab_size: int) -> Accepted:
    """Apply the module's document rules to one `index` call, with array operations over the whole batch
    (the outcome of `accept_documents_per_document`, at a few hundred nanoseconds per document)."""
    ids = check_ids(ids)
    if isinstance(vectors, SparseBatch) and vectors.vocab_size != vocab_size:
        raise InvalidInputError(f"The vectors are over {vectors.vocab_size} tokens, the index over {vocab_size}; "
                         "encode them with the model that built the index.")
    flat = _flat(vectors)
    metas = list(metadata) if metadata is not None else None
    n_meta = len(metas) if metas is not None else len(ids)
    if not (len(ids) == flat.n == n_meta):
        raise InvalidInputError(f"Got {len(ids)} ids, {flat.n} vectors and {n_meta} metadata entries; "
                         "pass one of each per document.")
    reasons = _id_reasons(ids)
    reasons = {**_vector_reasons(flat, vocab_size), **reasons}  # an id's reason comes first
    clean: list[dict[str, Any] | None] = [None] * len(ids)
    if metas is not None:
        for i, meta in enumerate(metas):
            if meta is not None:
                clean[i], why = metadata_problem(meta)
                if why and i not in reasons:
                    reasons[i] = why
    failed = {str(ids[i]): reasons[i] for i in sorted(reasons)}
    if not reasons and flat.batch is not None and not np.any(flat.weights < MIN_WEIGHT):
        return Accepted(ids, flat.batch, clean, failed)  # nothing to drop: the caller's batch as it is
    ok = np.ones(flat.n, dtype=bool)
    ok[list(reasons)] = False
    keep = ok[flat.row] & (flat.weights >= MIN_WEIGHT)
    counts = np.bincount(flat.row[keep], minlength=flat.n)[ok]
    indptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    tokens, weights = flat.tokens[keep], flat.weights[keep].astype(np.float32)
    if flat.batch is None:  # what SparseVector refuses for the whole call, as the per-document rules do
        if not np.all(np.isfinite(weights)):
            raise InvalidInputError("Sparse vector has NaN or inf weights; check the encoder output.")
        rows = np.repeat(np.arange(counts.size), counts)
        order = np.lexsort((tokens, rows))
        if np.any((np.diff(rows[order]) == 0) & (np.diff(tokens[order]) == 0)):
            raise InvalidInputError("Sparse vector has duplicate token ids.")
    csr = sp.csr_matrix((weights, tokens.astype(np.int32), indptr), shape=(counts.size, vocab_size))
    kept = np.flatnonzero(ok).tolist()
    return Accepted([ids[i] for i in kept], SparseBatch(csr, vocab_size), [clean[i] for i in kept], failed)


@dataclass
class _Flat:
    """A batch's entries back to back: token id and weight of each (and its row, computed when asked),
    plus the rows that are no vector."""

    n: int
    sizes: np.ndarray
    tokens: np.ndarray
    weights: np.ndarray
    not_vectors: dict[int, str]
    batch: SparseBatch | None = None  # the input, when it was a SparseBatch

    @property
    def row(self) -> np.ndarray:
        if not hasattr(self, "_row"):
            self._row = np.repeat(np.arange(self.n, dtype=np.int64), self.sizes)
        return self._row


def _flat(vectors: SparseBatch | Iterable[DocumentVector]) -> _Flat:
    if isinstance(vectors, SparseBatch):
        csr = vectors.csr
        return _Flat(csr.shape[0], np.diff(csr.indptr), csr.indices, csr.data, {}, vectors)
    rows = [_raw(v) for v in vectors]
    bad = {i: r for i, r in enumerate(rows) if isinstance(r, str)}
    good = [r for r in rows if not isinstance(r, str)]
    sizes = np.zeros(len(rows), dtype=np.int64)
    sizes[[i for i, r in enumerate(rows) if not isinstance(r, str)]] = [t.size for t, _ in good]
    tokens = np.concatenate([np.asarray(t, dtype=np.int64) for t, _ in good]) if good else np.zeros(0, np.int64)
    weights = np.concatenate([np.asarray(w, dtype=np.float64) for _, w in good]) if good else np.zeros(0)
    return _Flat(len(rows), sizes, tokens, weights, bad)


def _first(row: np.ndarray, mask: np.ndarray) -> dict[int, int]:
    """{row: position of its first entry where mask holds} over the rows that have one."""
    where = np.flatnonzero(mask)
    rows, first = np.unique(row[where], return_index=True)
    return dict(zip(rows.tolist(), where[first].tolist()))


def _vector_reasons(flat: _Flat, vocab_size: int) -> dict[int, str]:
    """`vector_problem` (or why a row is no vector) for every row that breaks a rule, by array operations."""
    reasons = dict(flat.not_vectors)
    tokens, weights = flat.tokens, flat.weights
    if not reasons and (not tokens.size or (tokens.min() >= 0 and tokens.max() < vocab_size
                                            and weights.min() >= MIN_WEIGHT)):  # NaN fails the last test
        empty = np.flatnonzero(flat.sizes == 0)
        return {r: "the vector has no positive weight, so it could never be retrieved" for r in empty.tolist()}
    row = flat.row
    for r, p in _first(row, (tokens < 0) | (tokens >= vocab_size)).items():
        reasons.setdefault(r, f"token id {int(tokens[p])} is outside the vocabulary [0, {vocab_size})")
    for r in _first(row, ~np.isfinite(weights)):
        reasons.setdefault(r, "the vector has NaN or inf weights")
    for r, p in _first(row, weights < 0).items():
        reasons.setdefault(r, f"token {int(tokens[p])} has a negative weight; document weights must be >= 0")
    scoring = np.bincount(row[weights >= MIN_WEIGHT], minlength=flat.n) > 0
    for r in np.flatnonzero(~scoring).tolist():
        reasons.setdefault(r, "the vector has no positive weight, so it could never be retrieved")
    return reasons


def _id_reasons(ids: list) -> dict[int, str]:
    """`id_problem` for every id that breaks a rule; all-ASCII string ids are checked as one array."""
    try:
        joined = "".join(ids)
        ascii_only = len(joined.encode("utf-8")) == len(joined)
    except (TypeError, UnicodeEncodeError):
        ascii_only = False
    if not ascii_only:
        return {i: why for i, why in enumerate(map(id_problem, ids)) if why}
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    return {i: id_problem(ids[i]) for i in np.flatnonzero((lengths == 0) | (lengths > MAX_ID_BYTES)).tolist()}


def accept_documents_per_document(ids: Sequence[str], vectors: SparseBatch | Sequence[DocumentVector],
                     metadata: Sequence[Mapping[str, Any] | None] | None, vocab_size: int) -> Accepted:
    """The module's document rules applied one document at a time: the specification `accept_documents`
    computes with array operations (the same outcome; tests/test_embedded_validate.py checks it)."""
    ids = check_ids(ids)
    if isinstance(vectors, SparseBatch) and vectors.vocab_size != vocab_size:
        raise InvalidInputError(f"The vectors are over {vectors.vocab_size} tokens, the index over {vocab_size}; "
                         "encode them with the model that built the index.")
    rows = _rows(vectors)
    metas = list(metadata) if metadata is not None else [None] * len(ids)
    if not (len(ids) == len(rows) == len(metas)):
        raise InvalidInputError(f"Got {len(ids)} ids, {len(rows)} vectors and {len(metas)} metadata entries; "
                         "pass one of each per document.")
    kept_ids, kept_rows, kept_meta, failed = [], [], [], {}
    for doc_id, row, meta in zip(ids, rows, metas):
        reason = id_problem(doc_id) or (row if isinstance(row, str) else vector_problem(*row, vocab_size))
        clean, meta_reason = metadata_problem(meta)
        reason = reason or meta_reason
        if reason:
            failed[str(doc_id)] = reason
            continue
        t, w = row
        keep = w >= MIN_WEIGHT
        kept_ids.append(doc_id)
        kept_rows.append(SparseVector(t[keep], w[keep]))
        kept_meta.append(clean)
    return Accepted(kept_ids, SparseBatch.from_vectors(kept_rows, vocab_size), kept_meta, failed)


def prepare_query(query: SparseVector, vocab_size: int) -> SparseVector:
    """The query as every backend scores it (module docstring); errors name the offending token."""
    if not isinstance(query, SparseVector):
        raise InvalidInputError(f"A query must be a SparseVector, got {type(query).__name__}; encode text with an "
                         "encoder's encode_query, or build one with SparseVector.from_dict.")
    ids, weights = query.ids, query.weights
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        bad = int(ids[(ids < 0) | (ids >= vocab_size)][0])
        raise InvalidInputError(f"Query token id {bad} is outside the vocabulary [0, {vocab_size}).")
    if np.any(weights < 0):
        bad = int(ids[np.flatnonzero(weights < 0)[0]])
        raise InvalidInputError(f"Query token {bad} has a negative weight ({float(weights[weights < 0][0]):g}); sparse "
                         "query weights must be positive: drop the token or clip the weights at 0.")
    keep = weights >= MIN_WEIGHT
    if not keep.all():
        query = SparseVector(ids[keep], weights[keep])
    return cap_terms(query, MAX_QUERY_TERMS)


def prepare_query_set(queries: Sequence[SparseVector], vocab_size: int) -> list[SparseVector]:
    """The phrasings of a query (set) as every set backend scores them: `prepare_query`, then the n
    phrasings share the one-request budget of `MAX_QUERY_TERMS` clauses that OpenSearch enforces, where
    each phrasing's ``nested`` wrapper takes a clause too: each keeps its heaviest ``MAX_QUERY_TERMS // n - 1``
    (measured on the node: 1,023 terms for one phrasing, 511 each for two, 340 for three)."""
    if not queries:
        raise InvalidInputError("The query set is empty; give at least one phrasing.")
    prepared = [prepare_query(q, vocab_size) for q in queries]
    share = MAX_QUERY_TERMS // len(prepared) - 1
    if share < 1:
        raise InvalidInputError(f"A query set of {len(prepared)} phrasings exceeds the {MAX_QUERY_TERMS}-clause budget "
                         "of one request; give fewer phrasings.")
    return [cap_terms(q, share) for q in prepared]


def prepare_queries(queries: SparseBatch | Sequence[SparseVector], vocab_size: int) -> list[SparseVector]:
    if isinstance(queries, SparseBatch) and queries.vocab_size != vocab_size:
        raise InvalidInputError(f"The queries are over {queries.vocab_size} tokens, the index over {vocab_size}.")
    return [prepare_query(q, vocab_size) for q in queries]



def accept_dense(ids: Sequence[str], accepted: Accepted, dense: object, dim: int | None) -> tuple[Accepted, np.ndarray]:
    """Align one `index` call's dense vectors (one row per id passed) with its accepted documents; a
    document whose dense vector is unusable (NaN / inf / all zeros) fails with the reason."""
    from lsr.backends.dense_rows import check_dense, dense_problem

    arr = check_dense(dense, len(ids), dim)
    position = {doc_id: i for i, doc_id in enumerate(ids) if isinstance(doc_id, str)}
    keep, rows, failed = [], [], dict(accepted.failed)
    for j, doc_id in enumerate(accepted.ids):
        row = arr[position[doc_id]]
        reason = dense_problem(row)
        if reason:
            failed[doc_id] = reason
        else:
            keep.append(j)
            rows.append(row)
    kept = Accepted([accepted.ids[j] for j in keep], accepted.vectors.rows(np.asarray(keep, dtype=np.int64)),
                    [accepted.metadata[j] for j in keep], failed)
    return kept, np.asarray(rows, dtype=np.float32).reshape(len(keep), arr.shape[1])


@dataclass
class AcceptedSets:
    """The set-valued documents of one `index` call that passed the rules: each one's member vectors."""

    ids: list[str]
    members: list[SparseBatch]
    metadata: list[dict[str, Any] | None]
    failed: dict[str, str] = field(default_factory=dict)


def accept_sets(ids: Sequence[str], member_vectors: Sequence[SparseBatch | Sequence[DocumentVector]],
                metadata: Sequence[Mapping[str, Any] | None] | None, vocab_size: int) -> AcceptedSets:
    """The document rules, member by member: a set fails when any member breaks a rule (reason names the
    member) or when it has no member."""
    ids = check_ids(ids)
    metas = list(metadata) if metadata is not None else [None] * len(ids)
    if not (len(ids) == len(member_vectors) == len(metas)):
        raise InvalidInputError(f"Got {len(ids)} ids, {len(member_vectors)} member lists and {len(metas)} metadata "
                         "entries; pass one of each per document.")
    out = AcceptedSets([], [], [])
    for doc_id, members, meta in zip(ids, member_vectors, metas):
        rows = _rows(members) if isinstance(members, SparseBatch) or not isinstance(members, (str, bytes)) else []
        reason = id_problem(doc_id) or ("" if rows else "the set has no member vectors")
        for j, row in enumerate(rows):
            problem = row if isinstance(row, str) else vector_problem(*row, vocab_size)
            if problem and not reason:
                reason = f"member {j}: {problem}"
        clean, meta_reason = metadata_problem(meta)
        reason = reason or meta_reason
        if reason:
            out.failed[str(doc_id)] = reason
            continue
        kept = [SparseVector(t[w >= MIN_WEIGHT], w[w >= MIN_WEIGHT]) for t, w in rows]
        out.ids.append(doc_id)
        out.members.append(SparseBatch.from_vectors(kept, vocab_size))
        out.metadata.append(clean)
    return out
