"""A local single-node OpenSearch (with the k-NN, neural-search and ML Commons plugins), without Docker.

The integ-test distribution and the plugins come from Maven Central through the machine's own
`mvn`; the node runs on a JDK >= 21 found under /usr/lib/jvm (or `OPENSEARCH_JAVA_HOME`). OpenSearch
refuses to run as root, so as root the node runs as a system user (default `opensearch`) from a home
that user can reach (default /var/lib/lsr-opensearch: /root is mode 700).

    from lsr.node import run as node
    url = node.start()          # idempotent; waits for cluster health yellow/green
    node.status(); node.stop()

Layout under the node home: `opensearch-VERSION/` (the install), `data/`, `logs/`, `opensearch.pid`.
Installing lives in `lsr.node.install`. Only the stdlib is used, so the manager works
without opensearch-py.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lsr.node import djl
from lsr.node.install import (  # noqa: F401 - NodeConfig/NodeError/install are this API too
    NodeConfig,
    NodeError,
    check_reachable,
    ensure_user,
    find_java_home,
    install,
    run_command,
    write_config,
)
from lsr.node.identify import check_engine
from lsr.node.users import hand_over, prepare_user_home

log = logging.getLogger(__name__)
MOVE_HINT = "choose another port for OpenSearch with --port or LSR_OPENSEARCH_PORT"

# Word boundaries keep JVM flags such as -XX:+HeapDumpOnOutOfMemoryError out of the error tail.
LOG_PATTERN = re.compile(r"ERROR|\bError\b|Exception\b|\b[Ff]atal\b|FATAL")


@dataclass(frozen=True)
class NodeStatus:
    """What `status()` reports; version and plugins are None / empty when the node does not answer."""

    running: bool
    pid: int | None
    url: str
    version: str | None = None
    plugins: tuple[str, ...] = ()


# --------------------------------------------------------------------------- HTTP


def _get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def is_healthy(url: str, timeout: float = 5.0) -> bool:
    """True when the cluster at `url` reports health yellow or green."""
    try:
        health = _get_json(f"{url}/_cluster/health", timeout)
    except (OSError, ValueError):  # URLError, refused, reset, timeout, bad JSON
        return False
    return health.get("status") in ("yellow", "green")


# --------------------------------------------------------------------------- process


def _read_pid(cfg: NodeConfig) -> int | None:
    try:
        return int(cfg.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_pid(cfg: NodeConfig) -> int | None:
    pid = _read_pid(cfg)
    return pid if pid is not None and _alive(pid) else None


def log_tail(cfg: NodeConfig, lines: int = 30) -> str:
    """The last `lines` ERROR / Exception / fatal lines of the node's logs (and its console output)."""
    logs = cfg.home / "logs"
    hits: list[str] = []
    for path in sorted(logs.glob("*.log"), key=lambda p: p.stat().st_mtime) if logs.is_dir() else ():
        hits += [f"{path.name}: {line}" for line in path.read_text(errors="replace").splitlines()
                 if LOG_PATTERN.search(line)]
    return "\n".join(hits[-lines:]) or f"(no ERROR/Exception lines under {logs})"


def library_path(cfg: NodeConfig) -> str:
    """LD_LIBRARY_PATH of the node: the k-NN plugin's native folder first (faiss / nmslib JNI libraries;
    without it the first document of a faiss field kills the node with UnsatisfiedLinkError)."""
    knn = cfg.install_dir / "plugins" / "opensearch-knn" / "lib"
    return os.pathsep.join([str(knn), *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])


def knn_native_engines(cfg: NodeConfig) -> list[str]:
    """The k-NN plugin's native engine libraries in its lib folder. The plugin zip on Maven Central (what
    `install` uses) ships none, so on this node `knn_vector` fields must use `"engine": "lucene"` (ours
    do): the first document of a faiss field stops the node (UnsatisfiedLinkError is fatal to OpenSearch)."""
    lib = cfg.install_dir / "plugins" / "opensearch-knn" / "lib"
    return sorted(p.name for p in lib.glob("libopensearchknn_*.so")) if lib.is_dir() else []


def _launch(cfg: NodeConfig, java_home: Path) -> None:
    cmd = [str(cfg.install_dir / "bin" / "opensearch"), "-d", "-p", str(cfg.pid_file)]
    cmd = ["env", f"OPENSEARCH_JAVA_HOME={java_home}", f"OPENSEARCH_PATH_CONF={cfg.conf_dir}",
           f"LD_LIBRARY_PATH={library_path(cfg)}", *cmd]
    if cfg.user is not None:
        cmd = ["runuser", "-u", cfg.user, "--", *cmd]
    console = cfg.home / "logs" / "console.log"
    with console.open("wb") as out:  # this start's console output only
        proc = subprocess.run(cmd, cwd=cfg.home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise NodeError(f"bin/opensearch exited with {proc.returncode}:\n{log_tail(cfg)}")


def _wait_healthy(cfg: NodeConfig, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen_pid = None
    while time.monotonic() < deadline:
        if is_healthy(cfg.url, timeout=2.0):
            return
        pid = _read_pid(cfg)
        if pid is not None:
            seen_pid = pid
        if seen_pid is not None and not _alive(seen_pid):
            raise NodeError(f"OpenSearch (pid {seen_pid}) exited during start-up:\n{log_tail(cfg)}")
        time.sleep(1.0)
    raise NodeError(f"OpenSearch did not report health yellow/green at {cfg.url} within {timeout:.0f} s "
                    f"(see {cfg.home / 'logs'}):\n{log_tail(cfg)}")


def start(cfg: NodeConfig | None = None, timeout: float = 180.0) -> str:
    """Install if needed and start the node; returns its URL. A node already healthy is left as it is."""
    cfg = cfg or NodeConfig.from_env()
    # Another engine on the port (an Elasticsearch node on 9200) is refused with one clear message.
    if check_engine(cfg.url, "opensearch", MOVE_HINT) is not None and is_healthy(cfg.url):
        log.info("OpenSearch already answers at %s", cfg.url)
        return cfg.url
    java_home = find_java_home(cfg.java_home)
    if _running_pid(cfg) is not None:
        log.info("OpenSearch (pid %s) runs from %s but does not answer yet; waiting", _read_pid(cfg), cfg.home)
        _wait_healthy(cfg, timeout)
        return cfg.url
    started = time.monotonic()
    prepare_user_home(cfg, "OpenSearch", "LSR_OPENSEARCH_USER")
    install(cfg, java_home)
    write_config(cfg)
    # before any local model deploy (lsr.node.djl); nodes of a local cluster only when asked (440 MB each)
    if cfg.ml_natives or (cfg.install_home is None and djl.downloaded(cfg)):
        djl.install_natives(cfg)
    cfg.pid_file.unlink(missing_ok=True)  # stale after a crash
    hand_over(cfg)
    if not knn_native_engines(cfg):
        log.info("the k-NN plugin has no native libraries here (its Maven Central zip ships none): use "
                 "\"engine\": \"lucene\" for knn_vector fields; a faiss or nmslib field stops the node")
    log.info("starting OpenSearch %s on %s (java %s)", cfg.version, cfg.url, java_home)
    _launch(cfg, java_home)
    _wait_healthy(cfg, timeout)
    log.info("OpenSearch is up at %s after %.0f s", cfg.url, time.monotonic() - started)
    return cfg.url


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.5)
    return not _alive(pid)


def stop(cfg: NodeConfig | None = None, timeout: float = 60.0) -> bool:
    """SIGTERM the node from its pid file, SIGKILL after `timeout` s; False when it was not running."""
    cfg = cfg or NodeConfig.from_env()
    pid = _running_pid(cfg)
    if pid is None:
        return False
    engine = getattr(cfg, "engine", "OpenSearch")  # lsr.node.elasticsearch stops its nodes here too
    log.info("stopping %s (pid %d)", engine, pid)
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        log.warning("%s (pid %d) ignored SIGTERM for %.0f s; killing it", engine, pid, timeout)
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def kill(cfg: NodeConfig | None = None) -> bool:
    """SIGKILL the node (a simulated crash: the pid file stays behind); False when it was not running."""
    cfg = cfg or NodeConfig.from_env()
    pid = _running_pid(cfg)
    if pid is None:
        return False
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10.0)
    return True


def status(cfg: NodeConfig | None = None) -> NodeStatus:
    """Whether the node runs (pid file) and answers (version and plugins from the REST API)."""
    cfg = cfg or NodeConfig.from_env()
    pid = _running_pid(cfg)
    try:
        version = _get_json(cfg.url)["version"]["number"]
        rows = _get_json(f"{cfg.url}/_cat/plugins?format=json")
    except (OSError, ValueError, KeyError):
        return NodeStatus(running=pid is not None, pid=pid, url=cfg.url)
    plugins = tuple(sorted({row["component"] for row in rows}))
    return NodeStatus(running=True, pid=pid, url=cfg.url, version=version, plugins=plugins)
