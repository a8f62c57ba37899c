"""Generated test images: good ones in many modes, deliberately bad ones, nested folders and a symlink loop."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

BAD = {"bad/truncated.jpg", "bad/zero.jpg", "bad/text.jpg", "bad/huge.png"}
HUGE_PIXELS = 200 * 200  # with max_pixels=TEST_MAX_PIXELS this one is "too large"
TEST_MAX_PIXELS = 100 * 100


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8))


def make_image_tree(root: Path) -> dict[str, tuple[int, int]]:
    """Write the tree under `root`; returns {id: (width, height)} of the good images."""
    good: dict[str, tuple[int, int]] = {}

    def save(rel: str, img: Image.Image, **kw) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, **kw)
        good[rel] = img.size

    save("red.png", Image.new("RGB", (40, 30), (220, 20, 20)))
    save("modes/rgba.png", Image.new("RGBA", (20, 20), (0, 0, 255, 0)))  # fully transparent -> white
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    save("modes/palette_transparent.png", pal, transparency=0)
    save("modes/grey.jpg", Image.new("L", (24, 24), 90))
    save("modes/cmyk.jpg", Image.new("CMYK", (24, 24), (255, 0, 255, 0)))  # green
    save("modes/depth16.png", Image.fromarray(np.full((12, 10), 40000, dtype=np.uint16)))
    frames = [Image.new("P", (10, 10), i) for i in range(2)]
    frames[0].save(root / "modes/anim.gif", save_all=True, append_images=frames[1:], transparency=0)
    good["modes/anim.gif"] = (10, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: stored 40x20, shown 20x40
    save("nested/deeper/rotated.jpg", _noise((40, 20), 1), exif=exif)
    save("nested/deeper/blue.bmp", Image.new("RGB", (8, 8), (10, 10, 240)))
    save("nested/green.webp", Image.new("RGB", (16, 12), (10, 200, 10)))
    save("nested/photo.tiff", _noise((30, 30), 2))
    good["nested/photo.tiff"] = (30, 30)

    (root / "bad").mkdir()
    buf = io.BytesIO()
    _noise((64, 64), 3).save(buf, format="JPEG", quality=95)
    (root / "bad/truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "bad/zero.jpg").write_bytes(b"")
    (root / "bad/text.jpg").write_text("this is not a jpeg\n")
    _noise((200, 200), 4).save(root / "bad/huge.png")
    (root / "notes.txt").write_text("not an image extension: ignored, not reported\n")
    os.symlink("..", root / "nested/deeper/loop")  # a symlink loop back up the tree
    os.symlink(root, root / "nested/root_again")
    return good
