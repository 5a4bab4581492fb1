"""The SQLite backend (``sqlite:///path``), the default: one file, WAL, FTS5, vectors with
HNSW graph files beside it.

Modules: ``store`` (the Store, connection, URL), ``schema`` and ``migrate`` (migrations as
data), ``sql`` and ``chat_sql`` (pure SQL builders), ``chat``, ``vectors``,
``message_vectors``, ``vector_files`` (graph-file persistence), ``bulk``, ``control`` (the
server's control plane).
"""

from engram.stores.sqlite.store import SQLiteStore, parse_sqlite_url

__all__ = ["SQLiteStore", "parse_sqlite_url"]
