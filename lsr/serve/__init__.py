"""`lsr serve`: a sparse encoding endpoint that OpenSearch (ML Commons remote models) and others call."""

from lsr.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
