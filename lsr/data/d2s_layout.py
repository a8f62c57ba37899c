"""Writing the public D2S embedding layout that `lsr train --data d2s:DIR` reads (`lsr.data.pairs`):

    img_embs.parquet, text_embs.parquet          id, emb        the projected (ITC, e.g. 256-d) vectors
    img_embs_pre.parquet, text_embs_pre.parquet  id, emb        the pre-projection [CLS] vectors (e.g. 768-d)
    dataset_meta.json                            Karpathy format: images[].imgid / filename / split /
                                                 sentences[].sentid / raw

Streaming and resumable: each encoded batch lands as a part file under `DIR/parts/` at once, and a run
that stops part-way is continued by running it again (ids already written are skipped); `finish()` folds
the parts into the files above (run after every encode, so the folder is always usable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from lsr.errors import InvalidInputError

KINDS = ("img", "text")


class D2SLayoutWriter:
    """Appends encoded batches to a D2S layout folder; see the module docstring."""

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.parts = self.out / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self.meta_path = self.parts / "meta.jsonl"

    def done(self, kind: str) -> set[str]:
        """Ids already written for `kind` ("img" or "text")."""
        import pyarrow.parquet as pq

        ids: set[str] = set()
        for part in sorted(self.parts.glob(f"{kind}-*.parquet")):
            ids.update(str(x) for x in pq.read_table(part, columns=["id"]).column("id").to_pylist())
        return ids

    def add(self, kind: str, ids: Sequence[str], emb: np.ndarray, pre: np.ndarray | None = None) -> None:
        """One batch of vectors (`pre`: the pre-projection ones, when the encoder gives them)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if kind not in KINDS:
            raise InvalidInputError(f"kind must be one of {KINDS}, got {kind!r}.")
        if len(ids) != len(emb) or (pre is not None and len(pre) != len(ids)):
            raise InvalidInputError(f"{len(ids)} ids for {len(emb)} vectors: one vector per id.")
        if not len(ids):
            return
        columns = {"id": pa.array([str(i) for i in ids], pa.string()), "emb": _list_column(emb)}
        if pre is not None:
            columns["pre"] = _list_column(pre)
        number = len(list(self.parts.glob(f"{kind}-*.parquet")))
        tmp = self.parts / f".{kind}-{number:06d}.tmp"
        pq.write_table(pa.table(columns), tmp)
        tmp.rename(self.parts / f"{kind}-{number:06d}.parquet")  # a part is whole or absent

    def add_images_meta(self, records: Iterable[dict]) -> None:
        """Karpathy image records ({"imgid", "filename", "split", "sentences": [{"sentid", "raw"}]})."""
        with self.meta_path.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record) + "\n")

    def finish(self) -> dict[str, int]:
        """Fold the parts into the layout's files; returns the counts written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        counts = {}
        for kind in KINDS:
            parts = sorted(self.parts.glob(f"{kind}-*.parquet"))
            if not parts:
                continue
            table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
            pq.write_table(table.select(["id", "emb"]), self.out / f"{kind}_embs.parquet")
            if "pre" in table.column_names and table.column("pre").null_count == 0:
                pq.write_table(pa.table({"id": table.column("id"), "emb": table.column("pre")}),
                               self.out / f"{kind}_embs_pre.parquet")
            counts[kind] = table.num_rows
        images: dict[str, dict] = {}
        if self.meta_path.is_file():
            for line in self.meta_path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                known = images.setdefault(str(record["imgid"]), {**record, "sentences": []})
                seen = {s["sentid"] for s in known["sentences"]}
                known["sentences"] += [s for s in record["sentences"] if s["sentid"] not in seen]
        (self.out / "dataset_meta.json").write_text(json.dumps({"images": list(images.values())}, indent=1))
        counts["meta_images"] = len(images)
        return counts


def _list_column(emb: np.ndarray):
    import pyarrow as pa

    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise InvalidInputError(f"Vectors must be a 2-d array, got shape {emb.shape}.")
    return pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), emb.shape[1])
