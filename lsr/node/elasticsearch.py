"""A local Elasticsearch node, without Docker: the third backend's server.

The distribution is Elastic's ``integ-test-zip`` from Maven Central
(``org.elasticsearch.distribution.integ-test-zip:elasticsearch:VERSION:zip``): a real server whose only
modules are ``transport-netty4``, ``x-pack-core``, ``x-pack-security`` and ``apm`` (no Painless, no ML,
no ``rank_features``, no RRF); ``sparse_vector`` and ``dense_vector`` are in the server core. The zip
bundles no JDK: 9.x runs on Java >= 21 (Temurin 25 under /usr/lib/jvm), 8.x on Java 17-23 (8.x refuses
Java 24+), found under /usr/lib/jvm or given as ``ES_JAVA_HOME``.

Elasticsearch refuses to run as root: as root the node runs as a system user (default
``elasticsearch``, ``LSR_ELASTICSEARCH_USER``) that the manager creates, from a home that user can
reach (default /var/lib/lsr-elasticsearch). It listens on 127.0.0.1:9250 by default (transport 9350), so
that it runs beside the OpenSearch node on 9200; before using or starting a node the manager checks
what answers on the port (`lsr.node.identify`) and refuses another engine with one clear message.

    from lsr.node import elasticsearch as es
    url = es.start()          # idempotent; waits for cluster health yellow/green
    es.status(); es.stop()

`EsNodeConfig(secure=True, password=...)` starts a secured node instead: TLS on HTTP (a CA and a node
certificate made with openssl under the home), the built-in user ``elastic`` with the password set
offline through the keystore (``bootstrap.password``), never on a command line or in the config.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from lsr.node.identify import ServerIdentity, check_engine, identify
from lsr.node.install import JVM_ROOT, NodeError, _mvn_copy, _unzip, java_version, run_command
from lsr.node.users import hand_over, prepare_user_home
from lsr.node.run import NodeStatus, _alive, _read_pid, kill, log_tail, stop  # noqa: F401 - kill/stop are this API too

log = logging.getLogger(__name__)

DEFAULT_VERSION = "9.5.3"
DEFAULT_PORT = 9250
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"


def _is_root() -> bool:
    return os.geteuid() == 0


def _default_home() -> Path:
    if os.environ.get("LSR_ELASTICSEARCH_HOME"):
        return Path(os.environ["LSR_ELASTICSEARCH_HOME"])
    return Path("/var/lib/lsr-elasticsearch") if _is_root() else Path.home() / ".cache" / "lsr" / "elasticsearch"


def _default_user() -> str | None:
    return os.environ.get("LSR_ELASTICSEARCH_USER", "elasticsearch") if _is_root() else None


@dataclass(frozen=True)
class EsNodeConfig:
    """Where and how the local Elasticsearch node runs (`user` None: as the current, non-root user)."""

    home: Path = field(default_factory=_default_home)
    port: int = DEFAULT_PORT
    heap_min: str = "512m"
    heap: str = "1g"
    user: str | None = field(default_factory=_default_user)
    version: str = DEFAULT_VERSION
    java_home: Path | None = None
    downloads: Path = field(default_factory=lambda: Path.home() / ".cache" / "lsr" / "elasticsearch-downloads")
    name: str = "lsr-es-1"
    cluster_name: str = "lsr-es"
    transport_port: int | None = None
    seed_ports: tuple[int, ...] = ()
    managers: tuple[str, ...] = ()
    install_home: Path | None = None  # a node of a local cluster shares the first node's install
    secure: bool = False  # TLS on HTTP + the built-in `elastic` user
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, **overrides) -> "EsNodeConfig":
        """Defaults from LSR_ELASTICSEARCH_HOME/_PORT/_HEAP/_USER/_VERSION and ES_JAVA_HOME; overrides win."""
        env = os.environ
        values: dict = {"home": _default_home(), "port": int(env.get("LSR_ELASTICSEARCH_PORT", DEFAULT_PORT)),
                        "heap": env.get("LSR_ELASTICSEARCH_HEAP", "1g"), "user": _default_user(),
                        "version": env.get("LSR_ELASTICSEARCH_VERSION", DEFAULT_VERSION),
                        "java_home": Path(env["ES_JAVA_HOME"]) if env.get("ES_JAVA_HOME") else None}
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**values, **given, "home": Path(given.get("home", values["home"]))})

    @property
    def conf_dir(self) -> Path:
        return self.home / "config"

    @property
    def install_dir(self) -> Path:
        return (self.install_home or self.home) / f"elasticsearch-{self.version}"

    engine = "Elasticsearch"  # for run.stop's messages (a class attribute, not a field)
    # The pid file and the URL as run.stop / kill / log_tail read them (attributes, not properties)
    pid_file = property(lambda self: self.home / "elasticsearch.pid")
    url = property(lambda self: f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}")

    @property
    def ca_file(self) -> Path:
        """The CA that signed the secured node's certificate (what clients pass as --ca-certs)."""
        return self.conf_dir / "certs" / "ca.pem"

    @property
    def move_hint(self) -> str:
        return "choose another port for Elasticsearch with --port or LSR_ELASTICSEARCH_PORT"


# --------------------------------------------------------------------------- Java


def java_range(version: str) -> tuple[int, int]:
    """(lowest, highest) Java major a distribution runs on: 9.x on 21+, 8.x on 17-23."""
    return (21, 10_000) if int(version.split(".")[0]) >= 9 else (17, 23)


def find_java(cfg: EsNodeConfig, jvm_root: Path = JVM_ROOT) -> Path:
    """ES_JAVA_HOME when given (checked), else the newest accepted JDK under `jvm_root`."""
    low, high = java_range(cfg.version)
    wanted = f"Java {low}+" if high > 1000 else f"Java {low}-{high}"
    if cfg.java_home is not None:
        found = java_version(cfg.java_home)
        if found is not None and not low <= found[0] <= high:
            raise NodeError(f"ES_JAVA_HOME={cfg.java_home} is Java {found[0]}; Elasticsearch {cfg.version} needs "
                            f"{wanted}.")
        return cfg.java_home
    homes = {}
    for candidate in sorted(jvm_root.iterdir()) if jvm_root.is_dir() else ():
        found = java_version(candidate)
        if found is not None and (candidate / "bin" / "java").exists():
            homes.setdefault(candidate.resolve(), found)
    usable = {home: v for home, v in homes.items() if low <= v[0] <= high}
    if not usable:
        seen = ", ".join(f"{h.name} ({v[0]})" for h, v in homes.items()) or "none"
        package = "openjdk-21-jdk-headless" if low >= 21 else "openjdk-17-jdk-headless"
        raise NodeError(f"Elasticsearch {cfg.version} needs {wanted}; JDKs under {jvm_root}: {seen}. Install one "
                        f"(`apt-get install -y {package}`) or set ES_JAVA_HOME.")
    return max(usable, key=usable.get)


# --------------------------------------------------------------------------- install and config


def install(cfg: EsNodeConfig) -> Path:
    """Download the zip through Maven (once) and unpack it under the home; returns the install folder."""
    if (cfg.install_dir / "bin" / "elasticsearch").is_file():
        return cfg.install_dir
    archive = cfg.downloads / f"elasticsearch-{cfg.version}.zip"
    if not archive.is_file() or archive.stat().st_size == 0:
        _mvn_copy(ARTIFACT.format(version=cfg.version), cfg.downloads)
    if not archive.is_file():
        raise NodeError(f"Maven did not produce {archive}; check that `mvn` reaches Maven Central.")
    home = cfg.install_home or cfg.home
    home.mkdir(parents=True, exist_ok=True)
    staging = home / f".unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    log.info("unpacking %s into %s", archive.name, home)
    _unzip(archive, staging)
    (staging / f"elasticsearch-{cfg.version}").rename(cfg.install_dir)
    shutil.rmtree(staging)
    return cfg.install_dir


def settings(cfg: EsNodeConfig) -> dict[str, object]:
    """The node's elasticsearch.yml settings: loopback only; single-node or one node of a local cluster;
    security off, or TLS on HTTP with the built-in users (`cfg.secure`)."""
    hosts = lambda items: "[" + ", ".join(items) + "]"  # noqa: E731
    values: dict[str, object] = {"cluster.name": cfg.cluster_name, "node.name": cfg.name}
    if not cfg.seed_ports:
        values["discovery.type"] = "single-node"
    else:
        values["discovery.seed_hosts"] = hosts(f"127.0.0.1:{p}" for p in cfg.seed_ports)
        values["cluster.initial_master_nodes"] = hosts(cfg.managers or (cfg.name,))
    values.update({"network.host": "127.0.0.1", "http.port": cfg.port,
                   "transport.port": cfg.transport_port or cfg.port + 100, "path.data": cfg.home / "data",
                   "path.logs": cfg.home / "logs", "cluster.routing.allocation.disk.threshold_enabled": "false",
                   "xpack.security.enabled": str(cfg.secure).lower()})
    if cfg.secure:
        values.update({"xpack.security.http.ssl.enabled": "true", "xpack.security.http.ssl.certificate": "certs/node.pem",
                       "xpack.security.http.ssl.key": "certs/node.key",
                       "xpack.security.http.ssl.certificate_authorities": "[certs/ca.pem]",
                       "xpack.security.transport.ssl.enabled": "false"})
    return values


def render_config(cfg: EsNodeConfig) -> str:
    """elasticsearch.yml (`settings`)."""
    lines = [f"{key}: {value}" for key, value in settings(cfg).items()]
    return "# Written by lsr.node.elasticsearch; edits are overwritten on start.\n" + "\n".join(lines) + "\n"


def _make_certificates(cfg: EsNodeConfig) -> None:
    """A CA and a node certificate for 127.0.0.1 / localhost, made once with openssl."""
    certs = cfg.conf_dir / "certs"
    if (certs / "node.pem").is_file():
        return
    certs.mkdir(parents=True, exist_ok=True)
    ssl = shutil.which("openssl")
    if ssl is None:
        raise NodeError("A secured node needs openssl for its certificates: `apt-get install -y openssl`.")
    run_command([ssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825", "-subj", "/CN=lsr-es-ca",
                 "-keyout", str(certs / "ca.key"), "-out", str(certs / "ca.pem")], "making the CA")
    ext = certs / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    run_command([ssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
                 str(certs / "node.key"), "-out", str(certs / "node.csr")], "making the node key")
    run_command([ssl, "x509", "-req", "-in", str(certs / "node.csr"), "-CA", str(certs / "ca.pem"), "-CAkey",
                 str(certs / "ca.key"), "-CAcreateserial", "-days", "825", "-extfile", str(ext), "-out",
                 str(certs / "node.pem")], "signing the node certificate")


def _set_bootstrap_password(cfg: EsNodeConfig, java_home: Path) -> None:
    """The `elastic` user's password, written into the keystore through stdin (never an argument)."""
    if not cfg.password:
        raise NodeError("A secured node needs a password for the `elastic` user (EsNodeConfig.password, "
                        "LSR_ELASTICSEARCH_PASSWORD).")
    tool = ["env", f"ES_JAVA_HOME={java_home}", f"ES_PATH_CONF={cfg.conf_dir}",
            str(cfg.install_dir / "bin" / "elasticsearch-keystore")]
    if cfg.user is not None:  # the keystore belongs to the node's user (the tool refuses to change an owner)
        run_command(["chown", "-R", f"{cfg.user}:", str(cfg.conf_dir)], f"handing {cfg.conf_dir} to {cfg.user}")
        tool = ["runuser", "-u", cfg.user, "--", *tool]
    if not (cfg.conf_dir / "elasticsearch.keystore").is_file():
        run_command([*tool, "create"], "creating the keystore")
    run_command([*tool, "add", "--force", "--stdin", "bootstrap.password"], "setting the bootstrap password",
                input=cfg.password)


def write_config(cfg: EsNodeConfig, java_home: Path) -> None:
    conf = cfg.conf_dir
    if not (conf / "jvm.options").is_file():
        shutil.copytree(cfg.install_dir / "config", conf, dirs_exist_ok=True)
    (conf / "elasticsearch.yml").write_text(render_config(cfg))
    (conf / "jvm.options.d").mkdir(exist_ok=True)
    (conf / "jvm.options.d" / "heap.options").write_text(f"-Xms{cfg.heap_min}\n-Xmx{cfg.heap}\n")
    for sub in ("data", "logs"):
        (cfg.home / sub).mkdir(parents=True, exist_ok=True)
    if cfg.secure:
        _make_certificates(cfg)
        _set_bootstrap_password(cfg, java_home)
    hand_over(cfg)


# --------------------------------------------------------------------------- run


def _ssl_context(cfg: EsNodeConfig):
    if not cfg.secure:
        return None
    import ssl

    return ssl.create_default_context(cafile=str(cfg.ca_file)) if cfg.ca_file.is_file() else None


def is_healthy(cfg: EsNodeConfig, timeout: float = 5.0) -> bool:
    """True when the node reports cluster health yellow or green (with the `elastic` user when secured)."""
    import base64
    import json
    import urllib.request

    request = urllib.request.Request(f"{cfg.url}/_cluster/health")
    if cfg.secure and cfg.password:
        token = base64.b64encode(f"elastic:{cfg.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_ssl_context(cfg)) as reply:
            return json.loads(reply.read()).get("status") in ("yellow", "green")
    except (OSError, ValueError):
        return False


def _wait_healthy(cfg: EsNodeConfig, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        if is_healthy(cfg, timeout=2.0):
            return
        seen = _read_pid(cfg) or seen
        if seen is not None and not _alive(seen):
            raise NodeError(f"Elasticsearch (pid {seen}) exited during start-up:\n{log_tail(cfg)}")
        time.sleep(1.0)
    raise NodeError(f"Elasticsearch did not report health yellow/green at {cfg.url} within {timeout:.0f} s "
                    f"(see {cfg.home / 'logs'}):\n{log_tail(cfg)}")


def check_port(cfg: EsNodeConfig) -> ServerIdentity | None:
    """What answers on the node's port: None (nothing), or Elasticsearch; another engine raises
    `ForeignServerError` naming it."""
    return check_engine(cfg.url, "elasticsearch", cfg.move_hint, context=_ssl_context(cfg))


def start(cfg: EsNodeConfig | None = None, timeout: float = 180.0) -> str:
    """Install if needed and start the node; returns its URL. A healthy Elasticsearch node there is kept."""
    cfg = cfg or EsNodeConfig.from_env()
    if check_port(cfg) is not None and is_healthy(cfg):
        log.info("Elasticsearch already answers at %s", cfg.url)
        return cfg.url
    java_home = find_java(cfg)
    if _read_pid(cfg) is not None and _alive(_read_pid(cfg)):
        log.info("Elasticsearch (pid %s) runs from %s but does not answer yet; waiting", _read_pid(cfg), cfg.home)
        _wait_healthy(cfg, timeout)
        return cfg.url
    began = time.monotonic()
    prepare_user_home(cfg, "Elasticsearch", "LSR_ELASTICSEARCH_USER")
    install(cfg)
    write_config(cfg, java_home)  # and hands the home to the node's user
    _boot(cfg, java_home, timeout)
    log.info("Elasticsearch is up at %s after %.0f s", cfg.url, time.monotonic() - began)
    return cfg.url


def _boot(cfg: EsNodeConfig, java_home: Path, timeout: float) -> None:
    log.info("starting Elasticsearch %s on %s (java %s)", cfg.version, cfg.url, java_home)
    cfg.pid_file.unlink(missing_ok=True)  # stale after a crash
    _launch(cfg, java_home)
    _wait_healthy(cfg, timeout)


def _launch(cfg: EsNodeConfig, java_home: Path) -> None:
    cmd = ["env", f"ES_JAVA_HOME={java_home}", f"ES_PATH_CONF={cfg.conf_dir}", "ES_JAVA_OPTS=",
           str(cfg.install_dir / "bin" / "elasticsearch"), "-d", "-p", str(cfg.pid_file)]
    if cfg.user is not None:
        cmd = ["runuser", "-u", cfg.user, "--", *cmd]
    with (cfg.home / "logs" / "console.log").open("wb") as out:
        proc = subprocess.run(cmd, cwd=cfg.home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise NodeError(f"bin/elasticsearch exited with {proc.returncode}:\n{log_tail(cfg)}")


def status(cfg: EsNodeConfig | None = None) -> tuple[NodeStatus, ServerIdentity | None]:
    """Whether the node runs (pid file, or Elasticsearch answers on its port), and what answers there."""
    cfg = cfg or EsNodeConfig.from_env()
    pid = _read_pid(cfg)
    pid = pid if pid is not None and _alive(pid) else None
    found = identify(cfg.url, context=_ssl_context(cfg))
    ours = found is not None and found.engine == "elasticsearch"
    return NodeStatus(running=pid is not None or ours, pid=pid, url=cfg.url, version=found.version if ours else None), found


def cluster_configs(nodes: int, base: EsNodeConfig | None = None) -> list[EsNodeConfig]:
    """`nodes` nodes of one local cluster on HTTP ports port, port+1 ... sharing the first node's install;
    every node is master-eligible (the first bootstraps the cluster)."""
    base = base or EsNodeConfig.from_env()
    names = tuple(f"lsr-es-node-{i + 1}" for i in range(nodes))
    seeds = tuple(base.port + 100 + i for i in range(nodes))
    return [replace(base, home=base.home / "cluster" / names[i], install_home=base.install_home or base.home,
                    port=base.port + i, transport_port=seeds[i], seed_ports=seeds, managers=names[:1],
                    name=names[i], heap="512m") for i in range(nodes)]


def wait_for_nodes(cfg: EsNodeConfig, nodes: int, timeout: float = 180.0) -> None:
    """Wait until `nodes` nodes have joined the cluster of `cfg`'s node (health yellow at least)."""
    import json
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{cfg.url}/_cluster/health?wait_for_nodes={nodes}&timeout=5s",
                                        timeout=10, context=_ssl_context(cfg)) as reply:
                if json.loads(reply.read()).get("number_of_nodes") == nodes:
                    return
        except (OSError, ValueError):
            pass
        time.sleep(1.0)
    raise NodeError(f"The Elasticsearch cluster at {cfg.url} did not reach {nodes} nodes within {timeout:.0f} s.")
