"""The library's errors: one base class, `LsrError`, so that a caller (and the `lsr` command) can tell
"the input or the environment needs a change" from a bug.

Each error also derives from the built-in exception that describes it (``ValueError``,
``FileNotFoundError``, ``ConnectionError`` ...), so ``except ValueError`` keeps working. Messages name
the input and say what to do; the command line prints them as one line (tracebacks only with ``-v``).
"""

from __future__ import annotations


class LsrError(Exception):
    """Base class of every error the library raises on purpose."""


class InvalidInputError(LsrError, ValueError):
    """An argument, a query, a document or a file's content breaks a rule (the message names it)."""


class MissingFileError(LsrError, FileNotFoundError):
    """A file or directory the call needs is not there (the message names it and where it comes from)."""


class IndexNotFoundError(MissingFileError):
    """No index at the given address (an empty directory, an absent OpenSearch index)."""


class ModelNotFoundError(MissingFileError):
    """No saved model at the given directory."""


class BackendUnavailableError(LsrError, ConnectionError):
    """The search server named by an address cannot be reached."""


class IndexLockedError(LsrError, RuntimeError):
    """Another process is writing this embedded index."""


class ServiceError(LsrError, RuntimeError):
    """A server or a service the library drives failed (a node, a remote model, a bulk request)."""


class ProvenanceError(LsrError, ValueError):
    """An index was built by another model or vocabulary than the encoder that searches it."""
