"""Safe image loading and the folder walk: modes, EXIF orientation, bad files, the pixel cap, symlink loops."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PIL")

from PIL import Image  # noqa: E402

from lsr.images.io import ImageError, open_rgb, to_rgb  # noqa: E402
from lsr.images.walk import ImageFile, WalkError, walk_images  # noqa: E402
from tests.image_fixtures import BAD, TEST_MAX_PIXELS, make_image_tree  # noqa: E402


@pytest.fixture()
def tree(tmp_path):
    return tmp_path, make_image_tree(tmp_path)


def test_every_good_image_opens_as_rgb_with_oriented_size(tree):
    root, good = tree
    for rel, (w, h) in good.items():
        loaded = open_rgb(root / rel, max_pixels=TEST_MAX_PIXELS)
        assert loaded.image.mode == "RGB", rel
        if rel.endswith("rotated.jpg"):
            assert (loaded.width, loaded.height) == (h, w) == (20, 40)
            assert loaded.image.size == (20, 40)
        else:
            assert (loaded.width, loaded.height) == (w, h), rel


def test_mode_conversions(tree):
    root, _ = tree
    px = lambda rel: np.asarray(open_rgb(root / rel).image)[0, 0].tolist()  # noqa: E731
    assert px("modes/rgba.png") == [255, 255, 255]  # transparent over white
    assert px("modes/palette_transparent.png") == [0, 255, 0]  # palette index 1, not the transparent 0
    assert px("modes/grey.jpg")[0] == px("modes/grey.jpg")[2]
    assert px("modes/depth16.png") == [156, 156, 156]  # 40000 / 257
    r, g, b = px("modes/cmyk.jpg")
    assert g > 200 and r < 60 and b < 60  # CMYK (255, 0, 255, 0) is green
    assert px("modes/anim.gif") == [255, 255, 255]  # first frame, transparent index 0
    assert to_rgb(Image.new("F", (2, 2), 0.5)).getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("rel, reason", [
    ("bad/truncated.jpg", "truncated"), ("bad/zero.jpg", "empty file"),
    ("bad/text.jpg", "not a recognised image"), ("bad/huge.png", "too large"),
])
def test_bad_files_raise_with_reason(tree, rel, reason):
    root, _ = tree
    with pytest.raises(ImageError, match=reason):
        open_rgb(root / rel, max_pixels=TEST_MAX_PIXELS)


def test_walk_is_sorted_recursive_and_survives_symlink_loops(tree):
    root, good = tree
    items = list(walk_images(root))
    assert not [i for i in items if isinstance(i, WalkError)]
    ids = [i.doc_id for i in items if isinstance(i, ImageFile)]
    assert sorted(ids) == sorted(set(good) | BAD)  # every file once: loops and aliases are not re-entered
    assert ids == [i.doc_id for i in walk_images(root) if isinstance(i, ImageFile)]  # a stable order
    assert all("\\" not in i and not i.startswith("/") for i in ids)


def test_walk_rejects_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(walk_images(tmp_path / "missing"))
