"""Multimodal learned sparse retrieval: frozen dense encoders -> dense-to-sparse projection ->
inverted index backends (embedded, OpenSearch) -> search -> evaluation."""

__version__ = "0.1.0"
