"""The local OpenSearch manager: JDK choice and config rendering (offline), then a REAL node."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from lsr.node import install
from lsr.node import run as node


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").touch()
    (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\n')
    return home


def test_java_version_reads_release_files(tmp_path):
    assert install.java_version(_fake_jdk(tmp_path, "a", "25.0.3")) == (25, 0, 3)
    assert install.java_version(_fake_jdk(tmp_path, "b", "1.8.0_402")) == (8, 0, 402)
    assert install.java_version(tmp_path / "missing") is None


def test_find_java_home_picks_the_newest_jdk_of_at_least_21(tmp_path):
    _fake_jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    _fake_jdk(tmp_path, "java-21-openjdk-amd64", "21.0.7")
    newest = _fake_jdk(tmp_path, "temurin-25-jdk-amd64", "25.0.3")
    (tmp_path / "default-java").symlink_to(tmp_path / "java-17-openjdk-amd64")
    (tmp_path / "no-release").mkdir()
    assert install.find_java_home(jvm_root=tmp_path) == newest.resolve()


def test_find_java_home_explains_what_to_install_when_only_17(tmp_path):
    _fake_jdk(tmp_path, "java-17-openjdk-amd64", "17.0.15")
    with pytest.raises(node.NodeError, match=r"Java >= 21.*17\.0\.15.*(apt-get install|OPENSEARCH_JAVA_HOME)"):
        install.find_java_home(jvm_root=tmp_path)


def test_opensearch_java_home_wins_but_must_be_21_or_newer(tmp_path):
    chosen = _fake_jdk(tmp_path, "mine", "21.0.1")
    _fake_jdk(tmp_path, "newer", "25.0.3")
    assert install.find_java_home(chosen, jvm_root=tmp_path) == chosen
    with pytest.raises(node.NodeError, match="OPENSEARCH_JAVA_HOME"):
        install.find_java_home(_fake_jdk(tmp_path, "old", "17.0.2"), jvm_root=tmp_path)


def test_config_rendering(tmp_path):
    cfg = node.NodeConfig(home=tmp_path / "home", port=9311, heap="512m")
    yml = install.render_config(cfg)
    for line in ("discovery.type: single-node", "network.host: 127.0.0.1", "http.port: 9311",
                 "cluster.routing.allocation.disk.threshold_enabled: false",
                 f"path.data: {tmp_path / 'home' / 'data'}", f"path.logs: {tmp_path / 'home' / 'logs'}"):
        assert line in yml.splitlines()
    assert install.render_heap(cfg) == "-Xms512m\n-Xmx512m\n"
    assert cfg.url == "http://127.0.0.1:9311"
    assert cfg.install_dir == tmp_path / "home" / "opensearch-3.6.0"


def test_node_config_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LSR_OPENSEARCH_HOME", str(tmp_path))
    monkeypatch.setenv("LSR_OPENSEARCH_PORT", "9333")
    monkeypatch.setenv("LSR_OPENSEARCH_HEAP", "2g")
    cfg = node.NodeConfig.from_env(heap="768m")
    assert (cfg.home, cfg.port, cfg.heap) == (tmp_path, 9333, "768m")
    assert cfg.user == ("opensearch" if os.geteuid() == 0 else None)


def test_log_tail_keeps_error_lines_only(tmp_path):
    cfg = node.NodeConfig(home=tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "lsr-local.log").write_text(
        "[INFO ] JVM arguments [-XX:+ShowCodeDetailsInExceptionMessages, -XX:+HeapDumpOnOutOfMemoryError]\n"
        "[ERROR][o.o.b.Bootstrap] Exception\n"
        "org.opensearch.http.BindHttpException: Failed to bind to 127.0.0.1:9200\n")
    assert node.log_tail(cfg).splitlines() == [
        "lsr-local.log: [ERROR][o.o.b.Bootstrap] Exception",
        "lsr-local.log: org.opensearch.http.BindHttpException: Failed to bind to 127.0.0.1:9200"]


@pytest.mark.opensearch
def test_node_answers_with_version_and_plugins(opensearch_url):
    with urllib.request.urlopen(opensearch_url, timeout=10) as resp:
        info = json.loads(resp.read())
    assert info["version"]["number"] == "3.6.0"
    with urllib.request.urlopen(f"{opensearch_url}/_cat/plugins?format=json", timeout=10) as resp:
        plugins = {row["component"] for row in json.loads(resp.read())}
    assert {"opensearch-knn", "opensearch-neural-search"} <= plugins
    assert node.is_healthy(opensearch_url)


@pytest.mark.opensearch
def test_start_is_idempotent(opensearch_url):
    if os.environ.get("OPENSEARCH_URL"):
        pytest.skip("OPENSEARCH_URL points at an external node: no pid file to compare")
    cfg = node.NodeConfig.from_env()
    before = node.status(cfg)
    assert before.running and before.pid is not None
    assert before.version == "3.6.0"
    assert {"opensearch-knn", "opensearch-neural-search"} <= set(before.plugins)
    assert node.start(cfg) == opensearch_url == cfg.url
    assert node.status(cfg).pid == before.pid
