"""Photo collections, measured on scikit-image's sample photos: near-duplicate grouping and the score floor.

Duplicates. Each sample photo gets five variants a photo library really holds: resized to 50%, re-encoded
as a JPEG of quality 25, cropped by 5% (2.5% off each side), stored rotated with an EXIF orientation tag
that turns it back, and 30% brighter; motorcycle_left's stereo partner motorcycle_right stands in for a
burst shot. Every other sample photo is unrelated. Three ways of calling two photos near-duplicates are
compared by pairwise precision and recall of the groups they make (connected components), over a range of
thresholds: the perceptual hash (Hamming distance, `lsr.images.photo_meta.phash`), the cosine of the
label-token sparse vectors, and the cosine of the encoder's dense features (class probabilities).

Score floor. Text queries that name what one of the photos shows (cat, coffee mug, ...) against queries
that name nothing in the set (pizza, violin, ...): the top-1 score of each, and the floor that separates
them best. Image queries: the variants of indexed photos against photos whose original is not indexed.

    python benchmarks/bench_photos.py --out results/photo_duplicates.json --floor-out results/photo_score_floor.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
          "coins.png", "color.png", "grass.png", "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png",
          "moon.png", "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png")
VARIANTS = ("resized", "jpeg_q25", "crop5", "exif_rotated", "brighter")
# text queries naming what a photo shows (the labelled set), and queries naming nothing in it
POSITIVE_QUERIES = {"cat": "chelsea", "tabby": "chelsea", "coffee mug": "coffee", "espresso": "coffee",
                    "motor scooter": "motorcycle_left", "wall clock": "clock_motion", "missile": "rocket",
                    "tripod": "camera", "space shuttle": "rocket"}
NEGATIVE_QUERIES = ("pizza", "violin", "golden retriever", "sailboat", "banana", "umbrella", "volcano",
                    "ambulance", "fountain pen", "goldfish", "strawberry", "lighthouse", "toaster", "zebra")


def sample_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def make_photo_set(dest: Path, photos: tuple[str, ...] = PHOTOS) -> dict[str, str]:
    """Write the originals, their variants and the burst partner under `dest`; {relative path: group}."""
    dest.mkdir(parents=True, exist_ok=True)
    groups: dict[str, str] = {}
    for name in photos:
        stem = Path(name).stem
        with Image.open(sample_dir() / name) as src:
            img = src.convert("RGB")
        w, h = img.size
        folder = dest / stem
        folder.mkdir(exist_ok=True)
        files = {
            "original.png": lambda p: img.save(p),
            "resized.jpg": lambda p: img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS).save(p, quality=90),
            "jpeg_q25.jpg": lambda p: img.save(p, quality=25),
            "crop5.jpg": lambda p: img.crop((round(w * .025), round(h * .025), w - round(w * .025),
                                             h - round(h * .025))).save(p, quality=90),
            "exif_rotated.jpg": lambda p: _save_exif_rotated(img, p),
            "brighter.jpg": lambda p: ImageEnhance.Brightness(img).enhance(1.3).save(p, quality=90),
        }
        for file, save in files.items():
            save(folder / file)
            groups[f"{stem}/{file}"] = stem
    if "motorcycle_left.png" in photos:
        with Image.open(sample_dir() / "motorcycle_right.png") as src:
            src.convert("RGB").save(dest / "motorcycle_left" / "burst.png")
        groups["motorcycle_left/burst.png"] = "motorcycle_left"
    return groups


def _save_exif_rotated(img: Image.Image, path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show": the pixels are stored turned the other way
    img.transpose(Image.Transpose.ROTATE_90).save(path, quality=90, exif=exif)


def pair_scores(truth: dict[str, str], predicted: list[list[str]]) -> dict[str, float]:
    """Pairwise precision / recall / F1 of predicted groups against the true ones."""
    ids = sorted(truth)
    pos = {i: n for n, i in enumerate(ids)}
    label = np.full(len(ids), -1)
    for g, members in enumerate(predicted):
        for m in members:
            label[pos[m]] = g
    tp = fp = fn = 0
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            same_true = truth[ids[a]] == truth[ids[b]]
            same_pred = label[a] >= 0 and label[a] == label[b]
            tp += same_true and same_pred
            fp += same_pred and not same_true
            fn += same_true and not same_pred
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def components(similar: np.ndarray, ids: list[str]) -> list[list[str]]:
    """Connected components (two or more members) of a boolean similarity matrix."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(sp.csr_matrix(similar), directed=False)
    groups: dict[int, list[str]] = {}
    for i, lab in enumerate(labels):
        groups.setdefault(int(lab), []).append(ids[i])
    return [g for g in groups.values() if len(g) > 1]


def encode(paths: list[Path]):
    """(sparse vectors as a dense matrix, dense features) of the label-token encoder."""
    from lsr.encoders.image_io import open_rgb
    from lsr.images.vectorise import ImageVectoriser
    from lsr.app.open import load_encoder

    sparse_encoder = load_encoder("efficientnet-labels")
    vectoriser = ImageVectoriser(sparse_encoder.encoder)
    images = [open_rgb(p, draft_size=512).image for p in paths]
    features = vectoriser.features(images, batch_size=16)
    sparse = vectoriser.to_sparse(features)
    return sparse_encoder, sparse, features


def cosine(matrix: np.ndarray) -> np.ndarray:
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def measure_duplicates(root: Path, truth: dict[str, str]) -> dict:
    from lsr.encoders.image_io import open_rgb
    from lsr.images.photo_meta import phash

    ids = sorted(truth)
    paths = [root / i for i in ids]
    hashes = np.array([int(phash(open_rgb(p, draft_size=512).image), 16) for p in paths], dtype=np.uint64)
    hamming = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    _, sparse, features = encode(paths)
    sparse_cos, dense_cos = cosine(sparse.csr.toarray()), cosine(np.asarray(features, dtype=np.float64))
    methods = {
        "phash": [(d, hamming <= d) for d in range(0, 25, 2)],
        "sparse_cosine": [(t, sparse_cos >= t) for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)],
        "dense_cosine": [(t, dense_cos >= t) for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)],
    }
    out = {}
    for name, sweeps in methods.items():
        rows = [{"threshold": float(t), **pair_scores(truth, components(sim, ids))} for t, sim in sweeps]
        best = max(rows, key=lambda r: (r["f1"], r["precision"]))
        out[name] = {"best": best, "sweep": rows}
    # recall of each variant kind at the chosen hash distance: is it grouped with its original?
    chosen = out["phash"]["best"]["threshold"]
    per_variant = {}
    for kind in VARIANTS + ("burst",):
        pairs = [(ids.index(i), ids.index(f"{truth[i]}/original.png")) for i in ids if Path(i).stem == kind]
        found = sum(bool(hamming[a, b] <= chosen) for a, b in pairs)
        per_variant[kind] = f"{found}/{len(pairs)}"
    out["phash"]["direct_match_with_original_at_best"] = per_variant
    return out


def measure_floor(root: Path, truth: dict[str, str]) -> dict:
    from lsr.backends.embedded import EmbeddedIndex

    ids = sorted(truth)
    encoder, sparse, _ = encode([root / i for i in ids])
    index = EmbeddedIndex(vocab_size=encoder.vocab_size)
    index.index(ids, sparse)
    text = {}
    for kind, queries in (("positive", list(POSITIVE_QUERIES)), ("negative", list(NEGATIVE_QUERIES))):
        for q in queries:
            hits = index.search(encoder.encode_query([q])[0], k=1)
            text[q] = {"kind": kind, "top1": round(hits[0].score, 4) if hits else 0.0,
                       "top1_id": hits[0].id if hits else None}
    # image queries: index the originals of half the photos; variants of those are positives, the rest negatives
    originals = sorted({truth[i] for i in ids})
    indexed = set(originals[::2])
    image_index = EmbeddedIndex(vocab_size=encoder.vocab_size)
    keep = [n for n, i in enumerate(ids) if i.endswith("original.png") and truth[i] in indexed]
    image_index.index([ids[n] for n in keep], sparse.rows(keep))
    image = {}
    for n, i in enumerate(ids):
        if i.endswith("original.png") and truth[i] in indexed:
            continue
        hits = image_index.search(sparse[n], k=1)
        image[i] = {"kind": "positive" if truth[i] in indexed else "negative",
                    "top1": round(hits[0].score, 4) if hits else 0.0}
    return {"text": {"queries": text, **best_floor(text)}, "image": {"queries": image, **best_floor(image)}}


def best_floor(rows: dict) -> dict:
    """The floor that classifies the most queries right (ties: the midpoint of the widest gap)."""
    pos = sorted(v["top1"] for v in rows.values() if v["kind"] == "positive")
    neg = sorted(v["top1"] for v in rows.values() if v["kind"] == "negative")
    candidates = sorted(set(pos + neg))
    cuts = [(a + b) / 2 for a, b in zip(candidates, candidates[1:])] or candidates
    best = max(cuts, key=lambda c: (sum(p >= c for p in pos) + sum(n < c for n in neg), -abs(c - np.median(cuts))))
    return {"floor": round(float(best), 4), "positives_kept": f"{sum(p >= best for p in pos)}/{len(pos)}",
            "negatives_refused": f"{sum(n < best for n in neg)}/{len(neg)}",
            "positive_top1_min": min(pos, default=None), "negative_top1_max": max(neg, default=None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="duplicates JSON (default: print)")
    parser.add_argument("--floor-out", default=None, help="score floor JSON (default: print)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        truth = make_photo_set(root)
        started = time.perf_counter()
        dup = measure_duplicates(root, truth)
        floor = measure_floor(root, truth)
        took = time.perf_counter() - started
    meta = {"photos": len(truth), "groups": len(set(truth.values())), "variants": list(VARIANTS) + ["burst"],
            "encoder": "efficientnet-labels", "seconds": round(took, 1), "machine": platform.machine()}
    for path, record in ((args.out, {**meta, "methods": dup}), (args.floor_out, {**meta, **floor})):
        text = json.dumps(record, indent=2)
        if path:
            Path(path).write_text(text + "\n")
        print(text if not path else f"wrote {path}")
    for name, m in dup.items():
        print(f"{name:14s} best {m['best']}")
    print("text floor", {k: v for k, v in floor["text"].items() if k != "queries"})
    print("image floor", {k: v for k, v in floor["image"].items() if k != "queries"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
