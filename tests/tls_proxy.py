"""A real TLS + basic-auth endpoint for the client tests: Debian's nginx in front of the local OpenSearch
node, with a CA and a server certificate made by `openssl` for the test (the security plugin is not on
Maven Central, so the node itself cannot be secured here)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TlsProxy:
    url: str  # https://localhost:PORT
    ca: Path  # the CA that signed the server certificate
    other_ca: Path  # a CA that did not
    user: str
    password: str


def _run(*cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> None:
    """ca.pem / other-ca.pem and server.pem + server.key for localhost and 127.0.0.1, signed by ca.pem."""
    for name in ("ca", "other-ca"):
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=lsr test {name}",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=folder)
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
         "-out", "server.csr", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=folder)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(folder: Path, upstream: str, user: str, password: str) -> tuple[subprocess.Popen, TlsProxy]:
    """nginx on a free loopback port: TLS with the test certificate, basic auth, proxying to `upstream`."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    make_certificates(folder)
    hashed = subprocess.run(["openssl", "passwd", "-apr1", password], capture_output=True, text=True,
                            check=True).stdout.strip()
    (folder / "htpasswd").write_text(f"{user}:{hashed}\n")
    port = _free_port()
    worker_user = "user root;" if os.geteuid() == 0 else ""  # workers read htpasswd in this private folder
    (folder / "nginx.conf").write_text(f"""
{worker_user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy;
  fastcgi_temp_path {folder}/fastcgi; uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;
  client_max_body_size 200m;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {folder}/server.pem;
    ssl_certificate_key {folder}/server.key;
    auth_basic "lsr test";
    auth_basic_user_file {folder}/htpasswd;
    location / {{
      proxy_pass {upstream};
      proxy_set_header Authorization "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
    process = subprocess.Popen([nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read().decode()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("nginx did not listen within 20 s")
    return process, TlsProxy(f"https://localhost:{port}", folder / "ca.pem", folder / "other-ca.pem", user, password)
