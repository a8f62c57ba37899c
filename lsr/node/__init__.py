"""A local OpenSearch node for development and CI: `install` provisions it, `run` starts and stops it."""
