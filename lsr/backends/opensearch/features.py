"""Feature names of the OpenSearch fields: the backend-neutral `lsr.backends.features` (Elasticsearch uses
the same naming), kept importable here."""

from lsr.backends.features import NAMINGS, FeatureNaming, escape_token, unescape_token  # noqa: F401
