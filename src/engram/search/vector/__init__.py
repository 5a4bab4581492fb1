"""The one vector engine: an index per namespace (exact, or HNSW when big) kept coherent by a change log.

* :mod:`.index` -- :class:`VectorIndex`, the in-process index of one namespace.
* :mod:`.engine` -- :class:`VectorEngine`, written once for every backend and
  for entries and messages alike: loads an index per namespace from a
  backend's rows (:class:`VectorRows`), replays the backend's change log so
  writes of other processes are seen, searches and merges across namespaces,
  and calls an optional :class:`GraphHook` to save and load HNSW graphs.
"""

from engram.search.vector.engine import (
    CHANGE_LOG_KEEP,
    MESSAGE_EXACT_MAX,
    MESSAGES,
    GraphHook,
    HeldRows,
    VectorEngine,
    VectorRows,
    from_blob,
    to_blob,
)
from engram.search.vector.index import (
    DEFAULT_EXACT_MAX,
    HNSW_CONNECTIVITY,
    HNSW_EXPANSION_ADD,
    HNSW_EXPANSION_SEARCH,
    HNSW_EXPANSION_SEARCH_MAX,
    HNSW_VECTORS_PER_EF,
    SMALL_SCAN,
    VectorIndex,
    ann_available,
    dot_scores,
    merge_top,
    search_expansion,
    top_k,
)

__all__ = [
    "CHANGE_LOG_KEEP",
    "DEFAULT_EXACT_MAX",
    "HNSW_CONNECTIVITY",
    "HNSW_EXPANSION_ADD",
    "HNSW_EXPANSION_SEARCH",
    "HNSW_EXPANSION_SEARCH_MAX",
    "HNSW_VECTORS_PER_EF",
    "MESSAGES",
    "MESSAGE_EXACT_MAX",
    "SMALL_SCAN",
    "GraphHook",
    "HeldRows",
    "VectorEngine",
    "VectorIndex",
    "VectorRows",
    "ann_available",
    "dot_scores",
    "from_blob",
    "merge_top",
    "search_expansion",
    "to_blob",
    "top_k",
]
