"""Published reference numbers: the YAML loads, figures round-trip, and the comparison table is right."""

from __future__ import annotations

import re

import pytest

from experiments.published import (
    DATASETS,
    DIRECTIONS,
    METRICS,
    PublishedResult,
    compare_table,
    load_published,
)

LABEL = "D2S sparse (caption proxy)"


def _find(results: list[PublishedResult], model: str, dataset: str, direction: str) -> PublishedResult:
    hits = [r for r in results if r.model == model and r.dataset == dataset and r.direction == direction]
    assert len(hits) == 1, (model, dataset, direction, hits)
    return hits[0]


def _section(table: str, direction: str) -> str:
    start = table.index(f"== {DIRECTIONS[direction]} ({direction}) ==")
    end = table.find("\n== ", start + 1)
    return table[start : end if end != -1 else len(table)]


def test_yaml_loads_with_source_and_verified_flag():
    results = load_published()
    assert len(results) >= 20
    for r in results:
        assert r.source.strip(), r
        assert isinstance(r.verified, bool), r
        assert r.dataset is None or r.dataset in DATASETS
        assert r.direction is None or r.direction in DIRECTIONS
        assert set(r.metrics) <= set(METRICS)
        if r.is_claim:
            assert r.note, f"claim without text: {r}"


@pytest.mark.parametrize(
    ("model", "dataset", "direction", "expected"),
    [
        ("BLIP", "coco5k", "t2i", (65.1, 86.3, 91.8)),
        ("BLIP", "coco5k", "i2t", (82.4, 95.4, 97.9)),
        ("ALBEF", "coco5k", "t2i", (60.7, 84.3, 90.5)),
        ("BLIP", "f30k1k", "t2i", (87.5, 97.7, 98.9)),
        ("ALBEF", "f30k1k", "i2t", (95.9, 99.8, 100.0)),
        ("CLIP ViT-L/14@336 (LAVIS run)", "coco5k", "t2i", (36.5, 60.8, 71.0)),
        ("CLIP ViT-L/14@336 (LAVIS run)", "f30k1k", "i2t", (86.5, 98.0, 99.1)),
    ],
)
def test_verified_figures_round_trip(model, dataset, direction, expected):
    r = _find(load_published(), model, dataset, direction)
    assert r.verified
    assert tuple(r.metrics[m] for m in METRICS) == pytest.approx(expected)


def test_second_hand_d2s_is_marked_unverified():
    results = load_published()
    d2s = _find(results, "D2S sparse (BLIP teacher)", "coco5k", "t2i")
    assert d2s.metrics == {"R@1": pytest.approx(55.9)}
    assert not d2s.verified
    lexlip = [r for r in results if r.model == "LexLIP"]
    assert lexlip and all(r.is_claim for r in lexlip)


def test_compare_table_delta_and_disclaimer():
    results = load_published()
    ours = {LABEL: {"t2i": {"R@1": 40.25, "R@5": 70.0, "R@10": 80.0}, "i2t": {"R@1": 50.0}}}
    table = compare_table(ours, "coco5k", published=results)

    assert "caption proxy" in table and "NOT reproductions" in table

    blip = _find(results, "BLIP", "coco5k", "t2i")
    section = _section(table, "t2i")
    row = re.search(rf"^\s*{re.escape(LABEL)} vs BLIP \[\d+\]\s+(\S+)\s+(\S+)\s+(\S+)", section, re.M)
    assert row, table
    for got, m in zip(row.groups(), METRICS):
        assert got == f"{ours[LABEL]['t2i'][m] - blip.metrics[m]:+.1f}"

    # Only R@1 is given for i2t: the other deltas are blank ("-").
    blip_i2t = _find(results, "BLIP", "coco5k", "i2t")
    row = re.search(rf"^\s*{re.escape(LABEL)} vs BLIP \[\d+\]\s+(\S+)\s+(\S+)\s+(\S+)", _section(table, "i2t"), re.M)
    assert row and row.groups() == (f"{50.0 - blip_i2t.metrics['R@1']:+.1f}", "-", "-")

    # D2S (R@1 only) gets a delta row; claims are notes below the table, not rows.
    d2s = _find(results, "D2S sparse (BLIP teacher)", "coco5k", "t2i")
    row = re.search(rf"{re.escape(LABEL)} vs D2S sparse \(BLIP teacher\) \[\d+\]\s+(\S+)\s+(\S+)", section)
    assert row and row.groups() == (f"{40.25 - d2s.metrics['R@1']:+.1f}", "-")
    notes = table[table.index("without absolute figures") :]
    assert "STAIR" in notes and "LexLIP" in notes
    assert "STAIR [" not in table
    assert "Flickr30k" not in section  # only coco5k rows


def test_compare_table_rejects_unknown_dataset():
    with pytest.raises(ValueError):
        compare_table({}, "imagenet")
