"""Types of the names `lsr` loads lazily (`lsr/__init__.py`), for type checkers and IDEs; a test keeps
the two in step."""

from lsr.app.folders import (
    FolderOptions as FolderOptions,
    index_folder as index_folder,
    open_folder_searcher as open_folder_searcher,
)
from lsr.app.indexing import IndexingResult as IndexingResult, index_jsonl as index_jsonl, index_split as index_split
from lsr.app.open import EncoderSpec as EncoderSpec, load_encoder as load_encoder, open_index as open_index
from lsr.app.specs import IndexSpec as IndexSpec, NewIndex as NewIndex
from lsr.backends.base import Hit as Hit, IndexReport as IndexReport, SparseBackend as SparseBackend
from lsr.backends.embedded import EmbeddedIndex as EmbeddedIndex
from lsr.backends.embedded_sets import EmbeddedSetIndex as EmbeddedSetIndex
from lsr.backends.opensearch import OpenSearchIndex as OpenSearchIndex
from lsr.backends.set_base import SetIndex as SetIndex
from lsr.d2s.model import D2SConfig as D2SConfig, D2SModel as D2SModel
from lsr.encoders.sparse import (
    D2SEncoder as D2SEncoder,
    InferenceFreeEncoder as InferenceFreeEncoder,
    LabelTokenEncoder as LabelTokenEncoder,
    SparseEncoder as SparseEncoder,
)
from lsr.errors import (
    BackendUnavailableError as BackendUnavailableError,
    IndexLockedError as IndexLockedError,
    IndexNotFoundError as IndexNotFoundError,
    InvalidInputError as InvalidInputError,
    LsrError as LsrError,
)
from lsr.search.modes import Hybrid as Hybrid, Rerank as Rerank, Retrieval as Retrieval, SetScoring as SetScoring
from lsr.search.searcher import Searcher as Searcher, SparseSearcher as SparseSearcher
from lsr.sparse import SparseBatch as SparseBatch, SparseVector as SparseVector
from lsr.vocab import Vocabulary as Vocabulary

__version__: str
__all__: list[str]
