"""The elasticsearch-py client for a `Connection` (the same URL, credential and TLS options as for
OpenSearch), reads with retries, and clear TLS / credentials errors.

Credentials come from the `Connection`, else from ``ELASTICSEARCH_USER`` / ``ELASTICSEARCH_PASSWORD``;
they never appear in a URL, a message or saved state. elasticsearch-py checks that the server is
Elasticsearch (its ``X-elastic-product`` header): an OpenSearch node at the URL is refused with a clear
`ForeignServerError`-style message here.
"""

from __future__ import annotations

import os
from dataclasses import replace

from lsr.backends.bulk import Engine
from lsr.backends.opensearch.client import AccessDeniedError, CertificateVerifyError, NodeUnavailableError
from lsr.backends.opensearch.connection import Connection
from lsr.backends.retry import retry_reads
from lsr.errors import BackendUnavailableError

USER_ENV, PASSWORD_ENV, URL_ENV = "ELASTICSEARCH_USER", "ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_URL"
DEFAULT_URL = "http://127.0.0.1:9250"
READ_TRIES = 3


def connection_from_env(url: str | None = None, **options) -> Connection:
    """A `Connection` to `url` (default ``ELASTICSEARCH_URL``, else the local node on 9250) with the user
    and password from ``ELASTICSEARCH_USER`` / ``ELASTICSEARCH_PASSWORD`` unless given."""
    options.setdefault("user", os.environ.get(USER_ENV) or None)
    if options["user"] is not None:
        options.setdefault("password", os.environ.get(PASSWORD_ENV))
    return Connection(url or os.environ.get(URL_ENV) or DEFAULT_URL, **options)


def connect(target, timeout: float | None = None):
    """An elasticsearch-py client for `target`: a URL, a `Connection`, or an existing client (kept)."""
    if isinstance(target, str):
        target = connection_from_env(target, **({"timeout": timeout} if timeout else {}))
    elif isinstance(target, Connection) and timeout:
        target = replace(target, timeout=timeout)
    if not isinstance(target, Connection):
        return target
    try:
        from elasticsearch import Elasticsearch
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("The Elasticsearch backend needs elasticsearch-py: "
                          "pip install 'mm-lsr-opensearch[elasticsearch]'") from exc
    tls: dict = {}
    if target.secure:
        tls = {"verify_certs": target.verify, "ssl_show_warn": False,
               **({"ca_certs": target.ca_certs} if target.ca_certs else {}),
               **({"client_cert": target.client_cert} if target.client_cert else {}),
               **({"client_key": target.client_key} if target.client_key else {})}
        if not target.verify:
            target.client()  # the same InsecureConnectionWarning as for OpenSearch (builds nothing else)
    auth = {"basic_auth": (target.user, target.password)} if target.user is not None else {}
    client = Elasticsearch(hosts=target.hosts, request_timeout=target.timeout, max_retries=0,
                           retry_on_timeout=False, connections_per_node=8, **auth, **tls)
    client.read_tries = target.retries
    client.lsr_url = target.url
    return client


def explain_failure(client, exc: Exception) -> Exception | None:
    """A clear error for a TLS, credentials or wrong-product failure (None for other failures)."""
    from elasticsearch import AuthenticationException, AuthorizationException, UnsupportedProductError
    from elastic_transport import TlsError

    url = getattr(client, "lsr_url", "the Elasticsearch node")
    if isinstance(exc, TlsError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return CertificateVerifyError(
            f"TLS with Elasticsearch at {url} failed: {str(exc)[:160]}. If the node's certificate is signed by "
            "your own CA, pass --ca-certs FILE (Connection(ca_certs=...)).")
    if isinstance(exc, AuthenticationException):
        return AccessDeniedError(f"Elasticsearch at {url} refused the credentials (HTTP 401). Check --user and the "
                                 f"password ({USER_ENV} / {PASSWORD_ENV}, or --password-file).")
    if isinstance(exc, AuthorizationException):
        return AccessDeniedError(f"Elasticsearch at {url} denied this request to the user (HTTP 403).")
    if isinstance(exc, UnsupportedProductError):
        return BackendUnavailableError(f"{url} does not answer as Elasticsearch (no X-elastic-product header: an "
                                       "OpenSearch node?); point --url / the address at an Elasticsearch node.")
    return None


def _connection_errors() -> tuple[type, ...]:
    from elasticsearch import ConnectionError as EsConnectionError, ConnectionTimeout

    return (EsConnectionError, ConnectionTimeout)


def _helpers():
    from elasticsearch import helpers

    return helpers


def _not_found() -> type:
    from elasticsearch import NotFoundError

    return NotFoundError


ENGINE = Engine("Elasticsearch", _helpers, _connection_errors, explain_failure, _not_found, parallel_bulk=False)


def read_with_retries(client, call, *args, tries: int | None = None, backoff: float = 0.5, **kwargs):
    """Run a read, retried on a lost connection; TLS, credentials and wrong-product failures raise at once."""
    from elasticsearch import ApiError, UnsupportedProductError

    def unavailable(exc: Exception, tries: int) -> Exception:
        return NodeUnavailableError(f"Elasticsearch at {getattr(client, 'lsr_url', '?')} does not answer after {tries} "
                                    f"tries ({exc.__class__.__name__}). Start it (`lsr elasticsearch start`) or check "
                                    "the URL.")

    lost = _connection_errors()
    return retry_reads(lambda: call(*args, **kwargs), tries or getattr(client, "read_tries", READ_TRIES), backoff,
                       (ApiError, UnsupportedProductError, *lost), lost, lambda exc: explain_failure(client, exc),
                       unavailable)
