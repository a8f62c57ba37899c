"""DJL's PyTorch native libraries for ML Commons' LOCAL models (TorchScript and ONNX), installed offline.

ML Commons runs local models through DJL, and both engines need PyTorch's native libraries (DJL's ONNX
engine uses PyTorch for array operations). DJL downloads them from publish.djl.ai on the first local deploy,
which fails offline with ``UnknownHostException`` inside a static initialiser: the node then needs a
restart after the files are in place. So the node manager puts them there first, from Maven Central
through the Maven step it already has:

- ``ai.djl.pytorch:pytorch-native-cpu:2.5.1:linux-x86_64`` (libtorch, libc10, libgomp; about 440 MB) and
- ``ai.djl.pytorch:pytorch-jni:2.5.1-0.32.0`` (libdjl_torch.so, its ``cpu`` build: the same C++ ABI),

extracted into ``<path.data>/ml_cache/pytorch/2.5.1-cpu-precxx11-linux-x86_64/`` with the JNI library named
``0.31.1-libdjl_torch.so`` (the plugin's DJL version), owned by the node's user. The jars are downloaded
once per machine (the node's download folder) and extracted once per node home.

Unsupported-but-tested: ML Commons 3.6 ships DJL 0.31.1 and this JNI library is 0.32.0's (no 0.31.1 build
for PyTorch 2.5.1 on Maven Central); `tests/test_local_model.py` checks what we rely on on a real node.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import zipfile
from pathlib import Path

from lsr.node.install import NodeConfig, NodeError, _mvn_copy, run_command

log = logging.getLogger(__name__)

PYTORCH_VERSION = "2.5.1"
DJL_JNI_VERSION = "0.32.0"
PLUGIN_DJL_VERSION = "0.31.1"  # DJL inside ML Commons 3.6 (the name DJL looks the JNI library up by)
FLAVOR = "cpu-precxx11"  # the folder name the plugin's DJL looks in
# Maven Central has no pre-cxx11 libtorch 2.5.1, so the folder holds the cxx11-ABI libtorch of
# pytorch-native-cpu and the JNI library built against it (`cpu`, not `cpu-precxx11`: that one fails with
# "undefined symbol: _ZN3c108ListType3getERKSs..." and takes the JVM down with it).
JNI_BUILD = "cpu"
NATIVE_ARTIFACT = f"ai.djl.pytorch:pytorch-native-cpu:{PYTORCH_VERSION}:jar:linux-x86_64"
JNI_ARTIFACT = f"ai.djl.pytorch:pytorch-jni:{PYTORCH_VERSION}-{DJL_JNI_VERSION}"
NATIVE_JAR = f"pytorch-native-cpu-{PYTORCH_VERSION}-linux-x86_64.jar"
JNI_JAR = f"pytorch-jni-{PYTORCH_VERSION}-{DJL_JNI_VERSION}.jar"
JNI_LIB = f"{PLUGIN_DJL_VERSION}-libdjl_torch.so"


def natives_dir(cfg: NodeConfig) -> Path:
    """Where DJL looks for PyTorch under the node's path.data (ML Commons' ml_cache)."""
    return cfg.home / "data" / "ml_cache" / "pytorch" / f"{PYTORCH_VERSION}-{FLAVOR}-linux-x86_64"


def installed(cfg: NodeConfig) -> bool:
    """Whether the node home has the libraries (the JNI library is written last)."""
    return (natives_dir(cfg) / JNI_LIB).is_file()


def downloaded(cfg: NodeConfig) -> bool:
    return all((cfg.downloads / jar).is_file() for jar in (NATIVE_JAR, JNI_JAR))


def download_natives(cfg: NodeConfig) -> tuple[Path, Path]:
    """The two jars in cfg.downloads (Maven Central, once per machine)."""
    for artifact, jar in ((NATIVE_ARTIFACT, NATIVE_JAR), (JNI_ARTIFACT, JNI_JAR)):
        if not (cfg.downloads / jar).is_file():
            _mvn_copy(artifact, cfg.downloads)
        if not (cfg.downloads / jar).is_file():
            raise NodeError(f"Maven did not produce {cfg.downloads / jar}; check `mvn` can reach Maven Central.")
    return cfg.downloads / NATIVE_JAR, cfg.downloads / JNI_JAR


def _extract(jar: Path, prefix: str, dest: Path, rename: dict[str, str] | None = None) -> None:
    with zipfile.ZipFile(jar) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            name = info.filename[len(prefix):]
            target = dest / (rename or {}).get(name, name)
            part = target.with_name(target.name + ".part")
            with archive.open(info) as src, part.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            part.chmod(0o755)
            part.replace(target)


def install_natives(cfg: NodeConfig | None = None) -> Path:
    """Download (once per machine) and extract (once per node home) DJL's PyTorch natives; the folder.

    Must run before the node's first local deploy (module docstring). Linux x86-64 only."""
    cfg = cfg or NodeConfig.from_env()
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise NodeError(f"DJL's PyTorch natives are installed for Linux x86-64 only, not {platform.system()} "
                        f"{platform.machine()}; let the node download them (online) or place them by hand.")
    target = natives_dir(cfg)
    if installed(cfg):
        return target
    native_jar, jni_jar = download_natives(cfg)
    target.mkdir(parents=True, exist_ok=True)
    log.info("installing DJL's PyTorch %s natives into %s", PYTORCH_VERSION, target)
    _extract(native_jar, "pytorch/cpu/linux-x86_64/", target)
    _extract(jni_jar, f"jnilib/linux-x86_64/{JNI_BUILD}/", target, {"libdjl_torch.so": JNI_LIB})
    if cfg.user is not None and os.geteuid() == 0:
        run_command(["chown", "-R", f"{cfg.user}:", str(cfg.home / "data" / "ml_cache")],
                    f"handing the ML cache to {cfg.user}")
    return target
