"""A local single-node OpenSearch (with the k-NN and neural-search plugins), without Docker.

The integ-test distribution and the two plugins come from Maven Central through the machine's own
`mvn`; the node runs on a JDK >= 21 found under /usr/lib/jvm (or `OPENSEARCH_JAVA_HOME`). OpenSearch
refuses to run as root, so as root the node runs as a system user (default `opensearch`) from a home
that user can reach (default /var/lib/lsr-opensearch: /root is mode 700).

    from lsr.backends import opensearch_node as node
    url = node.start()          # idempotent; waits for cluster health yellow/green
    node.status(); node.stop()

Layout under the node home: `opensearch-VERSION/` (the install), `data/`, `logs/`, `opensearch.pid`.
Only the stdlib is used here, so the manager works without opensearch-py.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_VERSION = "3.6.0"
MIN_JAVA = 21
JVM_ROOT = Path("/usr/lib/jvm")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"
# (plugin name as listed by _cat/plugins, Maven artifactId); order matters: neural-search extends k-NN.
PLUGINS: tuple[tuple[str, str], ...] = (("opensearch-knn", "opensearch-knn"),
                                        ("opensearch-neural-search", "neural-search"))
# Word boundaries keep JVM flags such as -XX:+HeapDumpOnOutOfMemoryError out of the error tail.
LOG_PATTERN = re.compile(r"ERROR|\bError\b|Exception\b|\b[Ff]atal\b|FATAL")


class NodeError(RuntimeError):
    """The local node could not be installed, started or stopped; the message says what to do."""


def _is_root() -> bool:
    return os.geteuid() == 0


def _default_home() -> Path:
    if os.environ.get("LSR_OPENSEARCH_HOME"):
        return Path(os.environ["LSR_OPENSEARCH_HOME"])
    if _is_root():
        return Path("/var/lib/lsr-opensearch")
    return Path.home() / ".cache" / "lsr" / "opensearch"


def _default_user() -> str | None:
    """OpenSearch refuses root: as root, run it as LSR_OPENSEARCH_USER (default `opensearch`)."""
    return os.environ.get("LSR_OPENSEARCH_USER", "opensearch") if _is_root() else None


@dataclass(frozen=True)
class NodeConfig:
    """Where and how the local node runs; `user` is None when it runs as the current (non-root) user."""

    home: Path = field(default_factory=_default_home)
    port: int = 9200
    heap: str = "1g"
    user: str | None = field(default_factory=_default_user)
    version: str = DEFAULT_VERSION
    java_home: Path | None = None
    downloads: Path = field(default_factory=lambda: Path.home() / ".cache" / "lsr" / "opensearch-downloads")

    @classmethod
    def from_env(cls, **overrides) -> NodeConfig:
        """Defaults from LSR_OPENSEARCH_HOME/_PORT/_HEAP/_USER and OPENSEARCH_JAVA_HOME; overrides win."""
        env = os.environ
        values: dict = {
            "home": _default_home(),
            "port": int(env.get("LSR_OPENSEARCH_PORT", "9200")),
            "heap": env.get("LSR_OPENSEARCH_HEAP", "1g"),
            "user": _default_user(),
            "java_home": Path(env["OPENSEARCH_JAVA_HOME"]) if env.get("OPENSEARCH_JAVA_HOME") else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = Path(values["home"])
        return cls(**values)

    @property
    def install_dir(self) -> Path:
        return self.home / f"opensearch-{self.version}"

    @property
    def pid_file(self) -> Path:
        return self.home / "opensearch.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class NodeStatus:
    """What `status()` reports; version and plugins are None / empty when the node does not answer."""

    running: bool
    pid: int | None
    url: str
    version: str | None = None
    plugins: tuple[str, ...] = ()


# --------------------------------------------------------------------------- Java


def java_version(java_home: Path) -> tuple[int, ...] | None:
    """The JAVA_VERSION of a JDK's `release` file as a tuple (17, 0, 15); None when unreadable."""
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="?([0-9][0-9._]*)', text, re.MULTILINE)
    if not match:
        return None
    parts = tuple(int(p) for p in re.split(r"[._]", match.group(1)) if p)
    return parts[1:] if parts[:1] == (1,) else parts  # "1.8.0_402" -> (8, 0, 402)


def find_java_home(explicit: Path | None = None, jvm_root: Path = JVM_ROOT) -> Path:
    """The JDK to run OpenSearch on: `explicit` (OPENSEARCH_JAVA_HOME) or the newest >= 21 under jvm_root."""
    if explicit is not None:
        version = java_version(explicit)
        if version is not None and version[0] < MIN_JAVA:
            raise NodeError(f"OPENSEARCH_JAVA_HOME={explicit} is Java {'.'.join(map(str, version))}; "
                            f"OpenSearch 3.x needs Java >= {MIN_JAVA}: point it at a newer JDK.")
        return explicit
    found = {}
    for candidate in sorted(jvm_root.iterdir()) if jvm_root.is_dir() else ():
        version = java_version(candidate)
        if version is not None and (candidate / "bin" / "java").exists():
            found.setdefault(candidate.resolve(), version)
    usable = {home: v for home, v in found.items() if v[0] >= MIN_JAVA}
    if not usable:
        seen = ", ".join(f"{h.name} ({'.'.join(map(str, v))})" for h, v in found.items()) or "none"
        raise NodeError(f"OpenSearch 3.x needs Java >= {MIN_JAVA}; JDKs under {jvm_root}: {seen}. "
                        f"Install one (e.g. `apt-get install -y openjdk-21-jdk-headless` or Temurin 21+) "
                        f"or set OPENSEARCH_JAVA_HOME.")
    return max(usable, key=usable.get)


# --------------------------------------------------------------------------- install


def _run(cmd: list[str], what: str, **kwargs) -> None:
    """Run `cmd` quietly; on failure raise NodeError with the tail of its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise NodeError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def _mvn_copy(artifact: str, out_dir: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise NodeError("Maven (`mvn`) is needed to download OpenSearch: `apt-get install -y maven`.")
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s with Maven", artifact)
    _run([mvn, "-B", "-q", DEPENDENCY_PLUGIN, f"-Dartifact={artifact}", f"-DoutputDirectory={out_dir}"],
         f"downloading {artifact}")


def download(cfg: NodeConfig) -> dict[str, Path]:
    """The distribution and plugin zips, fetched with Maven into cfg.downloads unless already there."""
    wanted = {"opensearch": (f"org.opensearch.distribution.integ-test-zip:opensearch:{cfg.version}:zip",
                             f"opensearch-{cfg.version}.zip")}
    for name, artifact_id in PLUGINS:
        wanted[name] = (f"org.opensearch.plugin:{artifact_id}:{cfg.version}.0:zip",
                        f"{artifact_id}-{cfg.version}.0.zip")
    paths = {}
    for name, (artifact, filename) in wanted.items():
        path = cfg.downloads / filename
        if not path.is_file() or path.stat().st_size == 0:
            _mvn_copy(artifact, cfg.downloads)
        if not path.is_file():
            raise NodeError(f"Maven did not produce {path}; check `mvn` can reach Maven Central.")
        paths[name] = path
    return paths


def _unzip(archive: Path, dest: Path) -> None:
    """Extract keeping the Unix permission bits (zipfile alone drops the executable bit of bin/*)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o7777
            if mode and not info.is_dir():
                target.chmod(mode)


def _unpack(cfg: NodeConfig, archive: Path) -> None:
    if (cfg.install_dir / "bin" / "opensearch").is_file():
        return
    log.info("unpacking %s into %s", archive.name, cfg.home)
    staging = cfg.home / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    _unzip(archive, staging)
    (staging / f"opensearch-{cfg.version}").rename(cfg.install_dir)
    shutil.rmtree(staging)


def _install_plugins(cfg: NodeConfig, zips: dict[str, Path], java_home: Path) -> None:
    env = {**os.environ, "OPENSEARCH_JAVA_HOME": str(java_home)}
    for name, _ in PLUGINS:
        if (cfg.install_dir / "plugins" / name).is_dir():
            continue
        log.info("installing plugin %s", name)
        _run([str(cfg.install_dir / "bin" / "opensearch-plugin"), "install", "--batch", zips[name].resolve().as_uri()],
             f"installing plugin {name}", env=env)


def _ensure_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        log.info("creating system user %s", user)
        _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
             f"creating user {user}")


def _check_reachable(path: Path, user: str) -> None:
    """Every parent of `path` must be traversable by `user` (it is not, e.g., under /root, mode 700)."""
    entry = pwd.getpwnam(user)
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid == entry.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == entry.pw_gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise NodeError(f"user {user} cannot enter {parent} (mode {stat.filemode(st.st_mode)}), so it cannot "
                            f"reach {path}; put the node home elsewhere, e.g. LSR_OPENSEARCH_HOME=/var/lib/lsr-opensearch.")


def install(cfg: NodeConfig, java_home: Path | None = None) -> Path:
    """Download, unpack and add the plugins unless already done; returns the install directory."""
    java_home = java_home or find_java_home(cfg.java_home)
    zips = download(cfg)
    cfg.home.mkdir(parents=True, exist_ok=True)
    _unpack(cfg, zips["opensearch"])
    _install_plugins(cfg, zips, java_home)
    return cfg.install_dir


# --------------------------------------------------------------------------- config


def render_config(cfg: NodeConfig) -> str:
    """The opensearch.yml of a single-node, loopback-only, plain-http node."""
    return "\n".join([
        "# Written by lsr.backends.opensearch_node; edits are overwritten on start.",
        "cluster.name: lsr-local",
        "node.name: lsr-node-1",
        "discovery.type: single-node",
        "network.host: 127.0.0.1",
        f"http.port: {cfg.port}",
        f"path.data: {cfg.home / 'data'}",
        f"path.logs: {cfg.home / 'logs'}",
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "",
    ])


def render_heap(cfg: NodeConfig) -> str:
    """config/jvm.options.d/heap.options: equal min and max heap."""
    return f"-Xms{cfg.heap}\n-Xmx{cfg.heap}\n"


def write_config(cfg: NodeConfig) -> None:
    """Write opensearch.yml and the heap options, and create the data and logs folders."""
    conf = cfg.install_dir / "config"
    (conf / "opensearch.yml").write_text(render_config(cfg))
    (conf / "jvm.options.d").mkdir(exist_ok=True)
    (conf / "jvm.options.d" / "heap.options").write_text(render_heap(cfg))
    for sub in ("data", "logs"):
        (cfg.home / sub).mkdir(exist_ok=True)


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


def _launch(cfg: NodeConfig, java_home: Path) -> None:
    cmd = [str(cfg.install_dir / "bin" / "opensearch"), "-d", "-p", str(cfg.pid_file)]
    cmd = ["env", f"OPENSEARCH_JAVA_HOME={java_home}", *cmd]
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
    if is_healthy(cfg.url):
        log.info("OpenSearch already answers at %s", cfg.url)
        return cfg.url
    java_home = find_java_home(cfg.java_home)
    if _running_pid(cfg) is not None:
        log.info("OpenSearch (pid %s) runs from %s but does not answer yet; waiting", _read_pid(cfg), cfg.home)
        _wait_healthy(cfg, timeout)
        return cfg.url
    started = time.monotonic()
    if cfg.user is not None:
        _ensure_user(cfg.user)
        cfg.home.mkdir(parents=True, exist_ok=True)
        _check_reachable(cfg.home, cfg.user)
    install(cfg, java_home)
    write_config(cfg)
    cfg.pid_file.unlink(missing_ok=True)  # stale after a crash
    if cfg.user is not None:
        _run(["chown", "-R", f"{cfg.user}:", str(cfg.home)], f"handing {cfg.home} to {cfg.user}")
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
    log.info("stopping OpenSearch (pid %d)", pid)
    os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        log.warning("OpenSearch (pid %d) ignored SIGTERM for %.0f s; killing it", pid, timeout)
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
