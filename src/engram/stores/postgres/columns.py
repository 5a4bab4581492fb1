"""What the modules that read and write entries share (``store``, ``bulk``, ``sql``, ``vectors``,
``pgvector``), which cannot import one another without a cycle: the columns an entry is selected
by, in the order ``engram.stores._sql_rows`` reads them; the values it is written with (one
upsert's parameters, the bulk ``COPY``'s rows); the text of a value for a ``json`` column.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from engram.models import Entry
from engram.search.tsquery import document_tsvector
from engram.validation import json_encoder

ENTRY_COLUMNS = (
    "e.id, e.key, e.namespace, e.content, e.content_escaped, e.metadata,"
    " e.created_at, e.updated_at, e.expires_at, e.context"
)

_to_json = json_encoder(allow_nan=False)  # built once: json.dumps builds an encoder per call


def json_text(value: Any) -> str:
    """Exact JSON text (the ``json`` type keeps it verbatim; NUL stays escaped as ``\\u0000``)."""
    return _to_json(value)


# The values an entry is written with, in this order (the upsert's parameters, the bulk COPY's columns).
ENTRY_VALUES = (
    "id", "namespace", "key", "content", "escaped", "metadata", "created_at", "updated_at", "expires_at", "tsv", "context",
)  # fmt: skip


def entry_values(e: Entry) -> tuple[Any, ...]:
    """``e``'s values in ``ENTRY_VALUES`` order. Content with NUL (which ``text`` cannot hold)
    goes in as a JSON string; the context always does (its column is ``json``)."""
    escaped = "\x00" in e.content
    return (
        e.id, e.namespace, e.key, json.dumps(e.content) if escaped else e.content, escaped,
        None if e.metadata is None else _to_json(e.metadata), e.created_at, e.updated_at, e.expires_at,
        document_tsvector(e.namespace, e.key, e.content), None if e.context is None else _to_json(e.context),
    )  # fmt: skip


def entry_params(e: Entry, now: datetime) -> dict[str, Any]:
    """Bound values of one upsert (``sql.UPSERT_ENTRY``)."""
    return dict(zip(ENTRY_VALUES, entry_values(e)), now=now)
