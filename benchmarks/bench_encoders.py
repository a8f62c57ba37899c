"""Throughput of the frozen encoders on this machine: images/s and captions/s.

Images are the scikit-image sample photos (real JPEG/PNG content of 300-700 px), repeated to `--images`
and passed as decoded PIL images, so the figures include preprocessing but not file decoding; the
folder row times `index_image_folder` end to end (walk, decode, encode, index) on the same photos
written to a temporary folder. Captions are short generated sentences.

Encoders: EfficientNet-Lite0 label tokens (real ImageNet weights), MiniLM (real, text only), a tiny
random BLIP (the test model: 64 px, 2 layers of width 32, so it measures the pipeline's overhead, not
BLIP), and with `--blip-base` a randomly initialised BLIP of the real base size (ViT-B/16 at 384 px,
BERT-base text), which is what a real checkpoint costs.

    python benchmarks/bench_encoders.py --images 64 --captions 512 [--blip-base] [--threads 1]

On a shared, busy CPU one thread can beat two (no oversubscription): compare `--threads 1`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import torch


def rate(fn: Callable[[], object], n: int, repeats: int = 2) -> float:
    """Best items/s over `repeats` timed runs after one warm-up run."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def sample_images(n: int):
    from PIL import Image
    from skimage import data

    root = Path(data.__file__).parent
    names = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png", "horse.png"]
    base = [Image.open(root / name).convert("RGB") for name in names]
    return [base[i % len(base)] for i in range(n)], [root / name for name in names]


def captions(n: int) -> list[str]:
    subjects = ["a cat", "two dogs", "a man in a red jacket", "children", "an old bus", "a cup of coffee"]
    actions = ["sitting on a sofa", "running across a field", "waiting at the station", "on a wooden table"]
    return [f"{subjects[i % 6]} {actions[i % 4]} near the {['river', 'window', 'market'][i % 3]}" for i in range(n)]


def tiny_blip_dir(path: Path, base: bool = False) -> Path:
    from transformers import AutoTokenizer, BlipConfig, BlipForImageTextRetrieval

    from lsr.encoders.blip import pil_image_processor_class
    from lsr.vocab import default_tokenizer_dir

    torch.manual_seed(0)
    if base:
        config = BlipConfig(vision_config=dict(image_size=384, initializer_range=0.02))  # BLIP base sizes
        size = 384
    else:
        config = BlipConfig(
            vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=64, patch_size=16, initializer_range=0.02),
            text_config=dict(vocab_size=30524, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, max_position_embeddings=64, encoder_hidden_size=32),
            projection_dim=24, image_text_hidden_size=24)
        size = 64
    BlipForImageTextRetrieval(config).save_pretrained(path)
    pil_image_processor_class()(size={"height": size, "width": size}).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(default_tokenizer_dir()), local_files_only=True).save_pretrained(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--captions", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--blip-base", action="store_true", help="also time a random BLIP of the real base size")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from lsr.backends.embedded import EmbeddedIndex
    from lsr.encoders.blip import BlipEncoder
    from lsr.encoders.efficientnet_labels import EfficientNetLabelEncoder
    from lsr.encoders.minilm import MiniLMEncoder
    from lsr.images import index_image_folder

    images, files = sample_images(args.images)
    texts = captions(args.captions)
    bs = args.batch_size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}; {len(images)} images, {len(texts)} captions, batch {bs}")
    rows: list[tuple[str, str, float]] = []

    eff = EfficientNetLabelEncoder(device="cpu")
    rows.append(("EfficientNet-Lite0 labels", "images/s", rate(lambda: eff.encode_images_sparse(images, bs), len(images))))
    rows.append(("EfficientNet-Lite0 labels", "queries/s", rate(lambda: [eff.encode_query(t) for t in texts], len(texts))))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i in range(len(images)):
            shutil.copy(files[i % len(files)], folder / f"{i:05d}{files[i % len(files)].suffix}")
        start = time.perf_counter()
        report = index_image_folder(folder, eff, EmbeddedIndex(), batch_size=bs)
        rows.append(("index_image_folder (EfficientNet)", "images/s", report.indexed / (time.perf_counter() - start)))

        minilm = MiniLMEncoder(device="cpu")
        rows.append(("MiniLM-L6", "captions/s", rate(lambda: minilm.encode_texts(texts, 128), len(texts))))

        blip = BlipEncoder(tiny_blip_dir(Path(tmp) / "tiny_blip"), device="cpu")
        rows.append(("tiny random BLIP (64 px)", "images/s", rate(lambda: blip.encode_images(images, bs), len(images))))
        rows.append(("tiny random BLIP", "captions/s", rate(lambda: blip.encode_texts(texts, 128), len(texts))))
        if args.blip_base:
            base = BlipEncoder(tiny_blip_dir(Path(tmp) / "blip_base", base=True), device="cpu")
            few = images[: min(8, len(images))]
            rows.append(("BLIP base size, random (384 px)", "images/s", rate(lambda: base.encode_images(few, 8), len(few), 1)))
            rows.append(("BLIP base size, random", "captions/s", rate(lambda: base.encode_texts(texts[:128], 64), 128, 1)))

    width = max(len(r[0]) for r in rows)
    for name, unit, value in rows:
        print(f"{name:<{width}}  {value:10.1f} {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
