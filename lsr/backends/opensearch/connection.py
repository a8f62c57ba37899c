"""How to reach an OpenSearch cluster: URL, credentials, TLS, timeouts and retries.

    conn = Connection.from_env("https://search.example:9200", ca_certs="ca.pem")   # user/password from env
    index = OpenSearchIndex(conn, index="photos")

Credentials come from `user` / `password`, from ``OPENSEARCH_USER`` / ``OPENSEARCH_PASSWORD``, or from
the URL (``https://user:secret@host:9200``); they are sent as HTTP basic auth and never appear in the
connection's repr, in `url` (which is what messages and saved state use) or in errors. TLS verification
is on by default (the system CAs, or `ca_certs`); `verify=False` must be asked for and warns.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from lsr.errors import InvalidInputError, MissingFileError

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:9200"
USER_ENV, PASSWORD_ENV, URL_ENV = "OPENSEARCH_USER", "OPENSEARCH_PASSWORD", "OPENSEARCH_URL"


class InsecureConnectionWarning(UserWarning):
    """TLS certificate verification was turned off for an https connection."""


@dataclass(frozen=True)
class Connection:
    """Everything needed to open a client; `url` never holds credentials (see the module docstring)."""

    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None  # PEM bundle of the CAs to trust (default: the system's)
    client_cert: str | None = None  # PEM certificate (and key, if `client_key` is not given) for mutual TLS
    client_key: str | None = None
    verify: bool = True
    timeout: float = 60.0  # seconds per request
    retries: int = 3  # tries of a read (search, exists) on a lost connection

    def __post_init__(self):
        user, password, clean = self.user, self.password, []
        for one in self.url.split(","):  # several nodes of one cluster: requests go round them, skipping dead ones
            parts = urlsplit(one.strip() if "://" in one else f"http://{one.strip()}")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidInputError(f"OpenSearch URL {_without_credentials(one.strip())!r} is not http(s)://HOST[:PORT]; "
                                 "pass e.g. --url https://localhost:9200 (several nodes: comma-separated).")
            if parts.username is not None:  # credentials in the URL move to the fields, out of the URL
                user = user or unquote(parts.username)
                password = password if password is not None else unquote(parts.password or "")
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            clean.append(urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")))
        if len({u.split(":", 1)[0] for u in clean}) > 1:
            raise InvalidInputError(f"The URLs {', '.join(clean)} mix http and https; use one scheme for the cluster.")
        object.__setattr__(self, "url", ",".join(clean))
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "password", password)
        if (password is not None) != (user is not None):
            raise InvalidInputError(f"OpenSearch at {self.url}: give both a user and a password (--user and "
                             f"{PASSWORD_ENV}), or neither.")
        for name in ("ca_certs", "client_cert", "client_key"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise MissingFileError(f"The {name.replace('_', ' ')} file {path} does not exist; pass an existing "
                                        "PEM file.")
        if self.retries < 1 or self.timeout <= 0:
            raise InvalidInputError(f"retries must be >= 1 and timeout > 0 (got {self.retries}, {self.timeout}).")

    @classmethod
    def from_env(cls, url: str | None = None, **options) -> "Connection":
        """A connection to `url` (default ``OPENSEARCH_URL``, else the local node) with the user and
        password from ``OPENSEARCH_USER`` / ``OPENSEARCH_PASSWORD`` unless given in `options`."""
        options.setdefault("user", os.environ.get(USER_ENV) or None)
        if options["user"] is not None:
            options.setdefault("password", os.environ.get(PASSWORD_ENV))
        return cls(url or os.environ.get(URL_ENV) or DEFAULT_URL, **options)

    @property
    def hosts(self) -> list[str]:
        return self.url.split(",")

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")

    def with_url(self, url: str) -> "Connection":
        return replace(self, url=url)

    def client(self):
        """An opensearch-py client for this connection (its `read_tries` used by `read_with_retries`)."""
        try:
            from opensearchpy import OpenSearch
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("The OpenSearch backend needs opensearch-py: "
                              "pip install 'mm-lsr-opensearch[opensearch]'") from exc

        tls = {}
        if self.secure:
            if not self.verify:
                warnings.warn(f"TLS certificate verification is off for {self.url}: the connection is encrypted "
                              "but anyone in between can read it; pass --ca-certs instead.",
                              InsecureConnectionWarning, stacklevel=2)
            tls = {"use_ssl": True, "verify_certs": self.verify, "ssl_show_warn": False,
                   "ssl_assert_hostname": None if self.verify else False,
                   **({"ca_certs": self.ca_certs} if self.ca_certs else {}),
                   **({"client_cert": self.client_cert} if self.client_cert else {}),
                   **({"client_key": self.client_key} if self.client_key else {})}
        auth = {"http_auth": (self.user, self.password)} if self.user is not None else {}
        # pool_maxsize: parallel bulk keeps several requests in flight; a pool of 1 would reconnect for each
        client = OpenSearch(hosts=self.hosts, timeout=self.timeout, max_retries=0, retry_on_timeout=False,
                            serializer=serializer(), pool_maxsize=8, **auth, **tls)
        client.read_tries = self.retries
        return client


def serializer():
    """opensearch-py's JSON serializer, with orjson (about 5x faster on bulk bodies) when it is installed."""
    from opensearchpy.serializer import JSONSerializer

    try:
        import orjson
    except ImportError:
        return JSONSerializer()

    class OrjsonSerializer(JSONSerializer):
        def dumps(self, data: Any) -> str:
            if isinstance(data, str):
                return data
            try:
                return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            except TypeError:  # a type orjson does not know: the stock serializer's rules apply
                return super().dumps(data)

    return OrjsonSerializer()


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None:
        return url
    return urlunsplit((parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))
