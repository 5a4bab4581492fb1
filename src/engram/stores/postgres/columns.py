"""What the modules that read and write entries share (``sql``, ``vectors``, ``pgvector``), which
cannot import one another without a cycle: the columns an entry is selected by, in the order
``engram.stores._sql_rows`` reads them, and the text of a value for a ``json`` column.
"""

from __future__ import annotations

from typing import Any

from engram.validation import json_encoder

ENTRY_COLUMNS = (
    "e.id, e.key, e.namespace, e.content, e.content_escaped, e.metadata,"
    " e.created_at, e.updated_at, e.expires_at, e.context"
)

_to_json = json_encoder(allow_nan=False)  # built once: json.dumps builds an encoder per call


def json_text(value: Any) -> str:
    """Exact JSON text (the ``json`` type keeps it verbatim; NUL stays escaped as ``\\u0000``)."""
    return _to_json(value)
