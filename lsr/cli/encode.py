"""`lsr encode`: images and their captions through a frozen image-text encoder into the public D2S embedding
layout (`lsr.data.d2s_layout`), so that `lsr train --data d2s:DIR` trains on them with no other step.

    lsr encode --encoder lavis-albef --encoder-path ALBEF.pth --images photos/ --captions train.tsv \\
        --split train --out embs/

`--captions` is a TSV file of `relative/image/path<TAB>caption` lines (several lines per image for several
captions); give one file per split (`--captions train.tsv val.tsv test.tsv --split train val test`), or run
once per split into the same --out. Interrupted runs resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lsr.errors import InvalidInputError

ENCODERS = ("blip", "lavis-albef", "lavis-blip")
KARPATHY_NAMES = ("train", "restval", "val", "test")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="encode images + captions with BLIP / ALBEF into the D2S embedding layout")
    p.add_argument("--encoder", choices=ENCODERS, required=True)
    p.add_argument("--encoder-path", required=True,
                   help="local weights: BLIP directory (blip) or LAVIS .pth checkpoint (lavis-*)")
    p.add_argument("--tokenizer-dir", default=None, help="local bert-base-uncased tokenizer (LAVIS encoders)")
    p.add_argument("--images", required=True, help="folder the caption file's paths are relative to")
    p.add_argument("--captions", required=True, nargs="+", metavar="TSV",
                   help="TSV files of relative/image/path<TAB>caption lines, one per --split")
    p.add_argument("--split", required=True, nargs="+", choices=KARPATHY_NAMES,
                   help="the Karpathy split of each --captions file (lsr train reads train+restval, val as dev, test)")
    p.add_argument("--out", required=True, help="layout folder (created; resumed when it exists)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_encode)


def read_captions(path: str | Path) -> dict[str, list[str]]:
    """image path -> its captions, in file order; a malformed line is an error naming it."""
    out: dict[str, list[str]] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        image, sep, caption = line.partition("\t")
        if not sep or not image.strip() or not caption.strip():
            raise InvalidInputError(f"{path}:{number} is not 'relative/image/path<TAB>caption'; fix or remove the line.")
        out.setdefault(image.strip(), []).append(caption.strip())
    if not out:
        raise InvalidInputError(f"{path} has no captions.")
    return out


def cmd_encode(args: argparse.Namespace) -> int:
    from lsr.data.d2s_layout import D2SLayoutWriter
    from lsr.encoders.registry import load_image_encoder

    if len(args.captions) != len(args.split):
        raise InvalidInputError(f"{len(args.captions)} --captions files but {len(args.split)} --split names: give one split "
                         "per file, in the same order.")
    work = [(read_captions(path), split) for path, split in zip(args.captions, args.split)]  # all checked first
    writer = D2SLayoutWriter(args.out)
    encoder = load_image_encoder(args.encoder, args.encoder_path, args.device, args.tokenizer_dir)
    status = 0
    for captions, split in work:
        status = max(status, encode_split(encoder, writer, captions, split, Path(args.images), args.batch_size))
    return status


def encode_split(encoder, writer, captions: dict[str, list[str]], split: str, root: Path, batch_size: int) -> int:
    """Encode one split's images (skipping unreadable ones, each reported) and captions; resumable. Returns 1
    when the split has no readable image at all."""
    from tqdm.auto import tqdm

    from lsr.images.io import ImageError, open_rgb
    from lsr.vectors import batches

    done_images, done_texts = writer.done("img"), writer.done("text")
    failed: dict[str, str] = {}
    todo = [name for name in captions if f"{split}/{name}" not in done_images]
    for chunk in tqdm(list(batches(todo, batch_size)), desc=f"{split} images", disable=not sys.stderr.isatty()):
        images, names = [], []
        for name in chunk:
            try:
                images.append(open_rgb(root / name).image)
                names.append(name)
            except (ImageError, OSError) as exc:
                failed[name] = str(exc)
        if not names:
            continue
        emb, pre = encoder.encode_images_features(images, batch_size=batch_size)
        writer.add("img", [f"{split}/{n}" for n in names], emb, pre)
        writer.add_images_meta({"imgid": f"{split}/{n}", "filename": n, "split": split,
                                "sentences": [{"sentid": f"{split}/{n}#{k}", "raw": c}
                                              for k, c in enumerate(captions[n])]} for n in names)
    texts = [(f"{split}/{n}#{k}", c) for n in captions if n not in failed for k, c in enumerate(captions[n])
             if f"{split}/{n}#{k}" not in done_texts]
    for chunk in tqdm(list(batches(texts, 256)), desc=f"{split} captions", disable=not sys.stderr.isatty()):
        emb, pre = encoder.encode_texts_features([c for _, c in chunk])
        writer.add("text", [i for i, _ in chunk], emb, pre)
    counts = writer.finish()
    for name, reason in failed.items():
        print(f"  failed {name}: {reason}")
    print(f"{writer.out}: {len(todo) - len(failed)} images and {len(texts)} captions encoded now ({split}), "
          f"{len(failed)} failed; the layout holds {counts.get('img', 0)} images, {counts.get('text', 0)} captions")
    held = sum(1 for i in done_images if i.startswith(f"{split}/")) + len(todo) - len(failed)
    return 0 if held else 1  # a split with no readable image at all is an error
