"""One report: JSON, a printed table, and a plot of R@1 against FLOPs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

COLUMNS = ("R@1", "R@5", "R@10", "MRR@10")


def format_table(rows: Mapping[str, Mapping], title: str = "") -> str:
    """A fixed-width table: one row per scorer with both directions, nnz and FLOPs."""
    head = (f"{'scorer':<38} | {'t2i ' + ' / '.join(COLUMNS):<32} | {'i2t ' + ' / '.join(COLUMNS):<32} "
            f"| {'q_nnz':>6} {'d_nnz':>6} {'FLOPs':>7}")
    lines = [title, head, "-" * len(head)] if title else [head, "-" * len(head)]
    for label, r in rows.items():
        t2i = "/".join(f"{r['t2i'][c]:.1f}" for c in COLUMNS)
        i2t = "/".join(f"{r['i2t'][c]:.1f}" for c in COLUMNS)
        q = f"{r['query_nnz']:.1f}" if "query_nnz" in r else "dense"
        d = f"{r['doc_nnz']:.1f}" if "doc_nnz" in r else "dense"
        fl = f"{r['flops']:.2f}" if "flops" in r else "-"
        lines.append(f"{label:<38} | {t2i:<32} | {i2t:<32} | {q:>6} {d:>6} {fl:>7}")
    return "\n".join(lines)


def gap_to_reference(rows: Mapping[str, Mapping], reference: str) -> str:
    """How far each scorer is from `reference` (e.g. dense cosine) at each R@K, in points."""
    ref = rows[reference]
    lines = [f"points from {reference}:"]
    for label, r in rows.items():
        if label == reference:
            continue
        parts = [f"{d} " + "/".join(f"{r[d][c] - ref[d][c]:+.1f}" for c in ("R@1", "R@5", "R@10")) for d in ("t2i", "i2t")]
        lines.append(f"  {label:<36} {'  '.join(parts)}")
    return "\n".join(lines)


def write_json(path: str | Path, report: Mapping) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, default=float))


def plot_r1_vs_flops(points: list[Mapping], path: str | Path, dense: Mapping | None = None,
                     title: str = "R@1 vs FLOPs (caption proxy)") -> Path:
    """Plot t2i and i2t R@1 against FLOPs for a sweep; each point has 'label', 'flops', 't2i', 'i2t'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    pts = sorted(points, key=lambda p: p["flops"])
    for direction, marker in (("t2i", "o"), ("i2t", "s")):
        xs = [p["flops"] for p in pts]
        ys = [p[direction]["R@1"] for p in pts]
        line, = ax.plot(xs, ys, marker=marker, label=f"D2S {direction}")
        for p, x, y in zip(pts, xs, ys):
            ax.annotate(p["label"], (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
        if dense is not None:
            ax.axhline(dense[direction]["R@1"], linestyle="--", color=line.get_color(), label=f"dense {direction}")
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs (co-activated terms per query-document pair)")
    ax.set_ylabel("R@1 (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
