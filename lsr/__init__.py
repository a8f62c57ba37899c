"""Multimodal learned sparse retrieval: frozen dense encoders -> dense-to-sparse projection ->
inverted index backends (embedded, OpenSearch) -> search -> evaluation.

    import lsr
    searcher = lsr.Searcher(lsr.open_index("runs/demo/index"), lsr.load_encoder("runs/demo/model"))
    hits = searcher.search("a dog catching a frisbee", k=5)

Names are imported on first use, so `import lsr` stays cheap (no torch, no OpenSearch client); the stub
`lsr/__init__.pyi` gives type checkers and IDEs their real types.
"""

from __future__ import annotations

from lsr.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {  # name -> the module that defines it (`lsr/__init__.pyi` gives type checkers the same)
    "open_index": "lsr.app.open",
    "load_encoder": "lsr.app.open",
    "EncoderSpec": "lsr.app.open",
    "IndexSpec": "lsr.app.specs",
    "NewIndex": "lsr.app.specs",
    "index_split": "lsr.app.indexing",
    "index_jsonl": "lsr.app.indexing",
    "IndexingResult": "lsr.app.indexing",
    "index_folder": "lsr.app.folders",
    "open_folder_searcher": "lsr.app.folders",
    "FolderOptions": "lsr.app.folders",
    "Searcher": "lsr.search.searcher",
    "SparseSearcher": "lsr.search.searcher",
    "Rerank": "lsr.search.modes",
    "Hybrid": "lsr.search.modes",
    "SetScoring": "lsr.search.modes",
    "Retrieval": "lsr.search.modes",
    "Hit": "lsr.backends.base",
    "IndexReport": "lsr.backends.base",
    "LsrError": "lsr.errors",
    "InvalidInputError": "lsr.errors",
    "IndexNotFoundError": "lsr.errors",
    "BackendUnavailableError": "lsr.errors",
    "IndexLockedError": "lsr.errors",
    "D2SEncoder": "lsr.encoders.sparse",
    "LabelTokenEncoder": "lsr.encoders.sparse",
    "InferenceFreeEncoder": "lsr.encoders.sparse",
    "SparseEncoder": "lsr.encoders.sparse",
    "EmbeddedIndex": "lsr.backends.embedded",
    "EmbeddedSetIndex": "lsr.backends.embedded_sets",
    "OpenSearchIndex": "lsr.backends.opensearch",
    "SparseBackend": "lsr.backends.base",
    "SetIndex": "lsr.backends.set_base",
    "D2SModel": "lsr.d2s.model",
    "D2SConfig": "lsr.d2s.model",
    "SparseVector": "lsr.sparse",
    "SparseBatch": "lsr.sparse",
    "Vocabulary": "lsr.vocab",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
