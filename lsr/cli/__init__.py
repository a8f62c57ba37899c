"""The `lsr` command line: `main` (train, eval, index, search, ...), `images`, `opensearch`, `backends`."""
