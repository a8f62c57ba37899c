"""Published reference retrieval numbers, and a plain-text table of ours beside them.

The figures live in `published.yaml` next to this module, each with its source and a `verified`
flag. `compare_table` lays our numbers beside them in the spirit of pyserini's "2CR" pages. Our
numbers come from a caption proxy, so the table is context, never a claim of reproduction.

    python -m experiments.published runs/demo/report.json   # a report of `lsr demo` / `lsr train`
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

DEFAULT_PATH = Path(__file__).with_name("published.yaml")
DATASETS: dict[str, str] = {"coco5k": "MS-COCO 5k test", "f30k1k": "Flickr30k 1k test"}
DIRECTIONS: dict[str, str] = {"t2i": "text->image", "i2t": "image->text"}
METRICS: tuple[str, ...] = ("R@1", "R@5", "R@10")
PROXY_DISCLAIMER = (
    "Our numbers come from a caption proxy (captions stand in for images, MiniLM teacher) and are "
    "NOT reproductions of the published figures; deltas show distance, not a like-for-like comparison."
)

Ours = Mapping[str, Mapping[str, Mapping[str, float]]]


@dataclass(frozen=True)
class PublishedResult:
    """One published figure set (or a claim without figures) with its provenance."""

    model: str
    dataset: str | None
    direction: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    setting: str = ""
    source: str = ""
    verified: bool = False
    note: str = ""

    @property
    def is_claim(self) -> bool:
        """True when the entry carries no absolute metric (a relative or efficiency claim)."""
        return not self.metrics

    def applies_to(self, dataset: str) -> bool:
        """Whether the entry belongs under `dataset` (entries with no dataset belong everywhere)."""
        return self.dataset is None or self.dataset == dataset


def _parse_entry(raw: Mapping[str, Any], index: int) -> PublishedResult:
    """Validate one YAML mapping and build a `PublishedResult`; raise ValueError when malformed."""
    where = f"published entry {index} ({raw.get('model', '?')})"
    for key in ("model", "source", "verified"):
        if key not in raw:
            raise ValueError(f"{where}: missing '{key}'")
    if not isinstance(raw["verified"], bool):
        raise ValueError(f"{where}: 'verified' must be true or false")
    if not str(raw["source"]).strip():
        raise ValueError(f"{where}: empty 'source'")
    dataset = raw.get("dataset")
    if dataset is not None and dataset not in DATASETS:
        raise ValueError(f"{where}: dataset {dataset!r} not in {sorted(DATASETS)}")
    direction = raw.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"{where}: direction {direction!r} not in {sorted(DIRECTIONS)}")
    metrics_raw = raw.get("metrics") or {}
    unknown = set(metrics_raw) - set(METRICS)
    if unknown:
        raise ValueError(f"{where}: unknown metrics {sorted(unknown)}")
    if metrics_raw and direction is None:
        raise ValueError(f"{where}: metrics need a direction")
    return PublishedResult(
        model=str(raw["model"]),
        dataset=dataset,
        direction=direction,
        metrics={k: float(v) for k, v in metrics_raw.items()},
        setting=str(raw.get("setting") or ""),
        source=str(raw["source"]),
        verified=raw["verified"],
        note=str(raw.get("note") or "").strip(),
    )


def load_published(path: str | Path | None = None) -> list[PublishedResult]:
    """Load published results from `path` (default: the packaged `published.yaml`)."""
    with open(path or DEFAULT_PATH, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    entries = doc.get("results") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        raise ValueError("published YAML must have a top-level 'results' list")
    return [_parse_entry(raw, i) for i, raw in enumerate(entries)]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _fmt_delta(ours: float | None, published: float | None) -> str:
    return "-" if ours is None or published is None else f"{ours - published:+.1f}"


def _render(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-align the first column, right-align the others; widths fit the content."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        out.append("  ".join(cells).rstrip())
    return out


def compare_table(
    ours: Ours, dataset: str, *, published: Sequence[PublishedResult] | None = None
) -> str:
    """Return a plain-text table of published rows for `dataset` beside ours, with deltas.

    `ours` maps a label (e.g. "D2S sparse (caption proxy)") to {"t2i": {"R@1": ..}, "i2t": {..}}
    in percentages; missing directions or metrics are shown as "-". Each of our rows gets a delta
    (ours - published) against every published row of the same direction that has the metric.
    Entries without metrics (claims) are listed as notes below the table. `published` defaults to
    `load_published()`.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} not in {sorted(DATASETS)}")
    entries = [e for e in (load_published() if published is None else published) if e.applies_to(dataset)]
    numbered = [e for d in DIRECTIONS for e in entries if not e.is_claim and e.direction == d]
    ref = {id(e): i for i, e in enumerate(numbered, start=1)}

    title = f"Retrieval on {DATASETS[dataset]} ({dataset}): published figures beside ours (percent)."
    lines = [title, PROXY_DISCLAIMER]
    header = ["system", *METRICS, "verified"]
    for direction, name in DIRECTIONS.items():
        pub = [e for e in numbered if e.direction == direction]
        mine = {label: dirs[direction] for label, dirs in ours.items() if direction in dirs}
        if not pub and not mine:
            continue
        rows: list[list[str]] = [header]
        rows += [[f"{e.model} [{ref[id(e)]}]", *(_fmt(e.metrics.get(m)) for m in METRICS),
                  "yes" if e.verified else "no"] for e in pub]
        rows += [[f"ours: {label}", *(_fmt(vals.get(m)) for m in METRICS), ""] for label, vals in mine.items()]
        for label, vals in mine.items():
            for e in pub:
                if any(vals.get(m) is not None and m in e.metrics for m in METRICS):
                    rows.append([f"  {label} vs {e.model} [{ref[id(e)]}]",
                                 *(_fmt_delta(vals.get(m), e.metrics.get(m)) for m in METRICS), ""])
        lines += ["", f"== {name} ({direction}) ==", *_render(rows)]

    if numbered:
        lines += ["", "Sources ('verified: no' = second-hand):"]
        for e in numbered:
            tail = f" Note: {e.note}" if e.note else ""
            lines.append(f"[{ref[id(e)]}] {e.model}, {e.direction}; {e.setting}. Source: {e.source}.{tail}")
    claims = [e for e in entries if e.is_claim]
    if claims:
        lines += ["", "Published claims without absolute figures (not comparable to the table):"]
        for e in claims:
            scope = ", ".join(x for x in (e.dataset, e.direction) if x) or "no single benchmark"
            flag = "yes" if e.verified else "no"
            lines.append(f"- {e.model} ({scope}): {e.note} Source: {e.source} (verified: {flag}).")
    return "\n".join(lines) + "\n"


def report_tables(report: Mapping[str, Any]) -> list[str]:
    """The comparison table of each Flickr30k / COCO test split of a caption-proxy training report
    (`lsr.app.training.run_experiment`'s `report.json`): the dense teacher and expanded D2S rows beside the
    published figures; none for other data."""
    tables = []
    for name, rows in report["results"].items():
        if report["label"] != "caption proxy" or "test" not in name:
            continue
        dataset = "coco5k" if "coco" in name else "f30k1k"
        ours = {f"{label} ({report['label']})": {d: rows[label][d] for d in ("t2i", "i2t")}
                for label in ("dense cosine (teacher)", "D2S sparse, expanded queries")}
        tables.append(compare_table(ours, dataset))
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.published",
                                description="Published figures beside the numbers of a training report.")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="report.json of `lsr demo` or `lsr train`")
    args = p.parse_args(argv)
    for path in args.reports:
        tables = report_tables(json.loads(Path(path).read_text(encoding="utf-8")))
        if not tables:
            print(f"{path}: no caption-proxy Flickr30k / COCO test split to compare", file=sys.stderr)
        for table in tables:
            print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
