"""The application layer: the one place that builds encoders, indexes and searchers from a description.

- `specs.py`: `IndexSpec` (an index address: a directory or ``opensearch://HOST:PORT/INDEX``), `NewIndex`.
- `open.py`: `open_index(address)`, `load_encoder(model_dir | name | EncoderSpec)`.
- `indexing.py`: `index_split` (a caption split), `index_jsonl` (a pyserini vector file).
- `folders.py`: `index_folder` (a folder of images, incrementally), `open_folder_searcher`.
- `training.py`: train a model from a config and evaluate it.

The command line, the search page, the benchmarks and the experiments are clients of this layer; nothing
here parses command lines.
"""
