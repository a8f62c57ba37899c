"""Which search server answers at a URL: OpenSearch or Elasticsearch, and its version.

Both local node managers (`lsr.node.run` for OpenSearch, `lsr.node.elasticsearch`) and the tests'
fixtures ask this before they use or start a node on a port, so that a node of the other engine on
"their" port gives one clear message instead of mapper errors much later. Only the stdlib is used.

- Elasticsearch (7.14+) sends the header ``X-elastic-product: Elasticsearch`` with every answer; its
  version comes from ``GET /_nodes/_local`` (``GET /`` answers 405 in the integ-test zips).
- OpenSearch answers ``GET /`` with ``version.distribution: opensearch``.
- A secured node that refuses us (401) is still identified by the header or the ``WWW-Authenticate``
  realm where it gives one; else it is reported as an unknown secured server.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, replace

from lsr.node.install import NodeError

ENGINES = ("opensearch", "elasticsearch")
NAMES = {"opensearch": "OpenSearch", "elasticsearch": "Elasticsearch"}


@dataclass(frozen=True)
class ServerIdentity:
    """What answers at `url`: `engine` is "opensearch", "elasticsearch" or "unknown"."""

    url: str
    engine: str
    version: str | None = None
    detail: str = ""

    def describe(self) -> str:
        name = NAMES.get(self.engine, "an unknown HTTP server")
        return f"{name}{' ' + self.version if self.version else ''}{' (' + self.detail + ')' if self.detail else ''}"


class ForeignServerError(NodeError):
    """Another engine (or an unknown server) answers on the port a node manager or a test wanted."""


def _request(url: str, timeout: float, context: ssl.SSLContext | None):
    """(status, headers, parsed JSON body or None) of a GET; raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as reply:
            status, headers, raw = reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, exc.headers, exc.read()
    try:
        body = json.loads(raw.decode() or "null")
    except ValueError:
        body = None
    return status, headers, body


def identify(url: str, timeout: float = 5.0, context: ssl.SSLContext | None = None) -> ServerIdentity | None:
    """The server at `url`, or None when nothing answers there (refused, reset, timed out)."""
    url = url.rstrip("/")
    try:
        status, headers, body = _request(f"{url}/", timeout, context)
    except ssl.SSLError:  # a plain-http server where TLS was expected: say what it is
        found = identify("http://" + url.split("://", 1)[1], timeout) if url.startswith("https://") else None
        return replace(found, url=url, detail="plain HTTP, not TLS") if found is not None else None
    except (OSError, ValueError) as exc:
        if isinstance(getattr(exc, "reason", None), ssl.SSLError) and url.startswith("https://"):
            found = identify("http://" + url.split("://", 1)[1], timeout)
            return replace(found, url=url, detail="plain HTTP, not TLS") if found is not None else None
        return None
    product = (headers.get("X-elastic-product") or "").lower()
    if isinstance(body, dict) and isinstance(body.get("version"), dict):
        version = body["version"]
        if version.get("distribution") == "opensearch":
            return ServerIdentity(url, "opensearch", version.get("number"))
        if product == "elasticsearch" or body.get("tagline") == "You Know, for Search":
            return ServerIdentity(url, "elasticsearch", version.get("number"))
    if product == "elasticsearch" or status == 405:  # the integ-test zip has no `GET /`
        try:
            status, headers, body = _request(f"{url}/_nodes/_local?filter_path=nodes.*.version", timeout, context)
        except (OSError, ValueError):
            body = None
        product = product or (headers.get("X-elastic-product") or "").lower()
        nodes = (body or {}).get("nodes", {}) if isinstance(body, dict) else {}
        version = next(iter(nodes.values()), {}).get("version") if nodes else None
        if product == "elasticsearch":
            return ServerIdentity(url, "elasticsearch", version)
    if status == 401:
        realm = (headers.get("WWW-Authenticate") or "").lower()
        if "security" in realm and "opensearch" in realm:
            return ServerIdentity(url, "opensearch", detail="secured")
        return ServerIdentity(url, "unknown", detail=f"HTTP 401, {headers.get('WWW-Authenticate') or 'secured'}")
    return ServerIdentity(url, "unknown", detail=f"HTTP {status} on GET /")


def check_engine(url: str, wanted: str, how_to_move: str, timeout: float = 5.0,
                 context: ssl.SSLContext | None = None) -> ServerIdentity | None:
    """None when nothing answers at `url`; the identity when `wanted` answers; else `ForeignServerError`
    naming what answers and `how_to_move` (e.g. "choose another port with --port or LSR_OPENSEARCH_PORT")."""
    found = identify(url, timeout, context)
    if found is None or found.engine == wanted:
        return found
    raise ForeignServerError(f"{url} answers as {found.describe()}, not {NAMES[wanted]}: it is not this manager's "
                             f"node. Stop that server or {how_to_move}.")
