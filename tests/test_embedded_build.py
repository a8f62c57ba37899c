"""The postings built group by group (`EmbeddedIndex._build`) equal those of one whole-batch transpose."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

import lsr.backends.embedded as embedded
from lsr.backends.embedded import EmbeddedIndex
from lsr.sparse import SparseBatch


def _batch(rng, n, vocab=40):
    dense = rng.random((n, vocab)).astype(np.float32) * (rng.random((n, vocab)) < 0.2)
    dense[:, 0] += 0.01  # no empty row
    return SparseBatch(sp.csr_matrix(dense), vocab)


def test_groups_and_incremental_builds_give_the_postings_of_one_transpose(monkeypatch):
    monkeypatch.setattr(embedded, "_GROUP_NNZ", 37)  # many groups, and large calls split by rows
    rng = np.random.default_rng(0)
    batches = [_batch(rng, n) for n in (1, 50, 3, 120, 7)]
    index = EmbeddedIndex(vocab_size=40)
    row = 0
    for j, b in enumerate(batches):
        index.index([f"d{row + i}" for i in range(len(b))], b)
        row += len(b)
        if j == 2:
            index.compact()  # the rest merges into built postings
    index.compact()
    whole = sp.vstack([b.csr for b in batches], format="csr").tocsc()
    whole.sort_indices()
    assert index._offsets.tolist() == whole.indptr.tolist()
    assert index._docs.tolist() == whole.indices.tolist()
    assert np.array_equal(index._vals, whole.data)
