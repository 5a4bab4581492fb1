"""The columns an entry is selected by, in the order ``engram.stores._sql_rows`` reads them.

One definition for the modules that select entries (``sql``, ``vectors``, ``pgvector``), which
cannot import one another without a cycle.
"""

from __future__ import annotations

ENTRY_COLUMNS = (
    "e.id, e.key, e.namespace, e.content, e.content_escaped, e.metadata,"
    " e.created_at, e.updated_at, e.expires_at, e.context"
)
