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
    FunctionRows,
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
    VectorIndex,
    ann_available,
    merge_top,
)

__all__ = [
    "CHANGE_LOG_KEEP",
    "DEFAULT_EXACT_MAX",
    "HNSW_CONNECTIVITY",
    "HNSW_EXPANSION_ADD",
    "MESSAGES",
    "MESSAGE_EXACT_MAX",
    "FunctionRows",
    "GraphHook",
    "HeldRows",
    "VectorEngine",
    "VectorIndex",
    "VectorRows",
    "ann_available",
    "from_blob",
    "merge_top",
    "to_blob",
]
