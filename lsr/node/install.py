"""Installing the local OpenSearch node: its configuration, a JDK >= 21, Maven downloads, plugins, config files.

`lsr.node.run` starts and stops what this module installs. Only the stdlib is used.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lsr.errors import MissingFileError, ServiceError

log = logging.getLogger(__name__)

DEFAULT_VERSION = "3.6.0"
MIN_JAVA = 21
JVM_ROOT = Path("/usr/lib/jvm")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"
# (plugin name as listed by _cat/plugins, Maven artifactId); order matters: neural-search extends k-NN,
# ML Commons (which serves models to neural_sparse query_text and sparse_encoding) extends job-scheduler.
PLUGINS: tuple[tuple[str, str], ...] = (("opensearch-knn", "opensearch-knn"),
                                        ("opensearch-neural-search", "neural-search"),
                                        ("opensearch-job-scheduler", "opensearch-job-scheduler"),
                                        ("opensearch-ml", "opensearch-ml-plugin"))
# ML Commons on a single small node: run models here, allow remote models on loopback, and do not refuse
# them for memory (its default circuit breakers trip on a 1 GB heap).
ML_SETTINGS = ("plugins.ml_commons.only_run_on_ml_node: false",
               "plugins.ml_commons.allow_registering_model_via_local_file: true",
               "plugins.ml_commons.connector.private_ip_enabled: true",
               "plugins.ml_commons.native_memory_threshold: 100",
               "plugins.ml_commons.jvm_heap_memory_threshold: 100")
class NodeError(ServiceError):
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
    # One node of a local cluster (`lsr.node.cluster`) shares another home's install and keeps its own
    # config folder; `seed_ports` (transport ports of all nodes) turns single-node discovery off.
    install_home: Path | None = None
    name: str = "lsr-node-1"
    cluster_name: str = "lsr-local"
    transport_port: int | None = None
    seed_ports: tuple[int, ...] = ()
    managers: tuple[str, ...] = ()  # initial cluster-manager nodes
    roles: tuple[str, ...] | None = None  # None: every role
    # install DJL's PyTorch natives (`lsr.node.djl`, ~440 MB from Maven Central) at start even before they
    # were downloaded once; downloaded ones are always installed. LSR_OPENSEARCH_ML_NATIVES=1 sets it.
    ml_natives: bool = False

    @classmethod
    def from_env(cls, **overrides) -> NodeConfig:
        """Defaults from LSR_OPENSEARCH_HOME/_PORT/_HEAP/_USER/_ML_NATIVES and OPENSEARCH_JAVA_HOME; overrides win."""
        env = os.environ
        values: dict = {
            "home": _default_home(),
            "port": int(env.get("LSR_OPENSEARCH_PORT", "9200")),
            "heap": env.get("LSR_OPENSEARCH_HEAP", "1g"),
            "user": _default_user(),
            "java_home": Path(env["OPENSEARCH_JAVA_HOME"]) if env.get("OPENSEARCH_JAVA_HOME") else None,
            "ml_natives": env.get("LSR_OPENSEARCH_ML_NATIVES", "") not in ("", "0", "false"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["home"] = Path(values["home"])
        return cls(**values)

    @property
    def install_dir(self) -> Path:
        return (self.install_home or self.home) / f"opensearch-{self.version}"

    @property
    def conf_dir(self) -> Path:
        """OPENSEARCH_PATH_CONF: the install's config folder, or the node's own when it shares an install."""
        return self.home / "config" if self.install_home is not None else self.install_dir / "config"

    @property
    def pid_file(self) -> Path:
        return self.home / "opensearch.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# --------------------------------------------------------------------------- Java


def find_ml_plugin_zip(downloads: str | Path | None = None) -> Path:
    """The ML Commons plugin zip that `lsr opensearch start` downloaded (Maven Central) into `downloads`
    (default: `NodeConfig.from_env().downloads`); it holds the stock bert-uncased IDF table
    (`lsr.encoders.inference_free.stock_idf`)."""
    folder = Path(downloads) if downloads is not None else NodeConfig.from_env().downloads
    found = sorted(folder.glob("opensearch-ml-plugin-*.zip"))
    if not found:
        raise MissingFileError(f"No ML Commons plugin zip in {folder}: the stock bert-uncased IDF table ships "
                                "inside it; run `lsr opensearch start` once (it downloads the plugin), or pass "
                                "the zip's path.")
    return found[-1]


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


def run_command(cmd: list[str], what: str, **kwargs) -> None:
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
    run_command([mvn, "-B", "-q", DEPENDENCY_PLUGIN, f"-Dartifact={artifact}", f"-DoutputDirectory={out_dir}"],
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
        run_command([str(cfg.install_dir / "bin" / "opensearch-plugin"), "install", "--batch", zips[name].resolve().as_uri()],
             f"installing plugin {name}", env=env)


def ensure_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        log.info("creating system user %s", user)
        run_command(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
             f"creating user {user}")


def check_reachable(path: Path, user: str) -> None:
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
    """The opensearch.yml of a loopback-only, plain-http node: single-node, or one node of a local cluster."""
    if cfg.seed_ports:
        discovery = [f"discovery.seed_hosts: [{', '.join(f'127.0.0.1:{p}' for p in cfg.seed_ports)}]",
                     f"cluster.initial_cluster_manager_nodes: [{', '.join(cfg.managers or (cfg.name,))}]"]
    else:
        discovery = ["discovery.type: single-node"]
    return "\n".join([
        "# Written by lsr.node.run; edits are overwritten on start.",
        f"cluster.name: {cfg.cluster_name}",
        f"node.name: {cfg.name}",
        *discovery,
        *([f"node.roles: [{', '.join(cfg.roles)}]"] if cfg.roles is not None else []),
        "network.host: 127.0.0.1",
        f"http.port: {cfg.port}",
        *([f"transport.port: {cfg.transport_port}"] if cfg.transport_port else []),
        f"path.data: {cfg.home / 'data'}",
        f"path.logs: {cfg.home / 'logs'}",
        "cluster.routing.allocation.disk.threshold_enabled: false",
        *ML_SETTINGS,
        "",
    ])


def render_heap(cfg: NodeConfig) -> str:
    """config/jvm.options.d/heap.options: equal min and max heap."""
    return f"-Xms{cfg.heap}\n-Xmx{cfg.heap}\n"


def write_config(cfg: NodeConfig) -> None:
    """Write opensearch.yml and the heap options, and create the data and logs folders."""
    conf = cfg.conf_dir
    if not (conf / "jvm.options").is_file():  # a node sharing an install starts from the install's config
        shutil.copytree(cfg.install_dir / "config", conf, dirs_exist_ok=True)
    (conf / "opensearch.yml").write_text(render_config(cfg))
    (conf / "jvm.options.d").mkdir(exist_ok=True)
    (conf / "jvm.options.d" / "heap.options").write_text(render_heap(cfg))
    for sub in ("data", "logs"):
        (cfg.home / sub).mkdir(parents=True, exist_ok=True)
