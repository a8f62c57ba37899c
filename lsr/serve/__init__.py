"""`lsr serve`: the search page of an index (`page`, `search`, `files`) and the sparse encoding endpoint
that OpenSearch (ML Commons remote models) and others call (`app`)."""

from lsr.serve.app import ServeConfig, create_app
from lsr.serve.files import ImageFiles
from lsr.serve.page import create_search_app
from lsr.serve.search import PageConfig, SearchService

__all__ = ["ImageFiles", "PageConfig", "SearchService", "ServeConfig", "create_app", "create_search_app"]
