"""The OpenSearch client and the JSON definitions (mappings, pipelines) that the backend sends.

Mappings and pipelines are the package data of `lsr.definitions` (the checkout's ``mappings/`` and
``pipelines/`` folders); nothing here duplicates them in Python.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from lsr.backends.opensearch.connection import Connection
from lsr.backends.retry import retry_reads
from lsr.definitions import load_definition  # noqa: F401 (the backend modules import it from here)
from lsr.errors import BackendUnavailableError, InvalidInputError, LsrError


TWO_PHASE_KEYS = ("prune_type", "prune_ratio", "expansion_rate", "max_window_size")


def two_phase_pipeline(overrides: Mapping[str, Any] | None = None) -> dict:
    """The two-phase search pipeline from ``pipelines/two_phase.json``, with `overrides` of its
    ``two_phase_parameter`` (prune_type, prune_ratio, expansion_rate, max_window_size)."""
    definition = load_definition("pipelines", "two_phase.json")
    definition.pop("description", None)
    unknown = set(overrides or {}) - set(TWO_PHASE_KEYS)
    if unknown:
        raise InvalidInputError(f"Unknown two-phase parameters {sorted(unknown)}; use {', '.join(TWO_PHASE_KEYS)}.")
    for processor in definition["request_processors"]:
        processor["neural_sparse_two_phase_processor"]["two_phase_parameter"].update(overrides or {})
    return definition


def connect(target, timeout: float | None = None):
    """An opensearch-py client for `target`: a URL (credentials and CA from the environment, see
    `Connection.from_env`), a `Connection`, or an existing client (returned as it is)."""
    if isinstance(target, str):
        target = Connection.from_env(target, **({"timeout": timeout} if timeout else {}))
    elif isinstance(target, Connection) and timeout:
        target = replace(target, timeout=timeout)
    return target.client() if isinstance(target, Connection) else target


class NodeUnavailableError(BackendUnavailableError):
    """The OpenSearch node does not answer (down, restarting, or another URL)."""


class CertificateVerifyError(LsrError, ConnectionError):
    """The node's TLS certificate is not trusted (or the URL's scheme does not match the node's)."""


class AccessDeniedError(LsrError, PermissionError):
    """The node refused the credentials (401) or the user's rights (403)."""


READ_TRIES = 3
READ_BACKOFF_S = 0.5


def node_url(client) -> str:
    """The URL(s) a client talks to, for messages (credentials left out)."""
    hosts = getattr(getattr(client, "transport", None), "hosts", None)
    if not hosts:
        return "the OpenSearch node"
    return ",".join(f"{'https' if h.get('use_ssl') or h.get('scheme') == 'https' else 'http'}://"
                    f"{h.get('host', '?')}:{h.get('port', '?')}" for h in hosts)


def explain_failure(client, exc: Exception) -> Exception | None:
    """A clear error for a TLS or credentials failure of `client` (None for other failures)."""
    from opensearchpy.exceptions import AuthenticationException, AuthorizationException, SSLError

    url = node_url(client)
    if isinstance(exc, SSLError):
        return CertificateVerifyError(
            f"TLS with OpenSearch at {url} failed: {str(getattr(exc, 'info', exc))[:160]}. If the node's "
            "certificate is signed by your own CA, pass --ca-certs FILE (Connection(ca_certs=...)); turning "
            "verification off (--insecure) encrypts without knowing who answers.")
    if isinstance(exc, AuthenticationException):
        return AccessDeniedError(
            f"OpenSearch at {url} refused the credentials (HTTP 401). Check --user and the password "
            "(OPENSEARCH_USER / OPENSEARCH_PASSWORD).")
    if isinstance(exc, AuthorizationException):
        return AccessDeniedError(
            f"OpenSearch at {url} denied this request to the user (HTTP 403); ask the cluster's admin for the "
            "index's read/write permissions.")
    return None


def read_with_retries(client, call, *args, tries: int | None = None, backoff: float = READ_BACKOFF_S, **kwargs):
    """Run a read (search, msearch, exists) and retry it on a lost connection (reads are idempotent); after
    `tries` (default: the client's `read_tries`, else 3), raise `NodeUnavailableError` naming the URL and
    what to do. TLS and credentials failures are not retried: they raise `CertificateVerifyError` /
    `AccessDeniedError` at once."""
    from opensearchpy.exceptions import ConnectionError as ClientConnectionError
    from opensearchpy.exceptions import TransportError

    def unavailable(exc: Exception, tries: int) -> Exception:
        return NodeUnavailableError(
            f"OpenSearch at {node_url(client)} does not answer after {tries} tries ({exc.__class__.__name__}: "
            f"{str(getattr(exc, 'info', exc))[:200]}). Start it (`lsr opensearch start`), wait for it to "
            "finish restarting, or check the URL (--url / OPENSEARCH_URL).")

    return retry_reads(lambda: call(*args, **kwargs), tries or getattr(client, "read_tries", READ_TRIES), backoff,
                       (TransportError,), (ClientConnectionError,), lambda exc: explain_failure(client, exc), unavailable)
