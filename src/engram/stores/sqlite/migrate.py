"""Apply ordered SQLite migrations inside an open write transaction.

Shared by the store (``engram_schema``) and the server's control database
(``engram_control_schema``): each keeps its own ordered list and version table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from engram.errors import ConfigError


def statements(script: str) -> Iterator[str]:
    """Split a migration into statements (trigger bodies keep their semicolons)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip():
        yield buffer


def apply_migrations(conn: sqlite3.Connection, version_table: str, migrations: Sequence[str], what: str) -> None:
    """Bring ``conn``'s schema up to ``len(migrations)``; idempotent.

    The caller holds a write transaction (``BEGIN IMMEDIATE``), so processes
    opening the same file at once migrate it exactly once.

    Raises:
        ConfigError: the file was written by a newer engram.
    """
    # version_table is one of our constants, never user input.
    conn.execute(f"CREATE TABLE IF NOT EXISTS {version_table} (version INTEGER NOT NULL)")
    row = conn.execute(f"SELECT version FROM {version_table}").fetchone()
    version = row[0] if row else 0
    if version > len(migrations):
        raise ConfigError(
            f"{what} has schema version {version}, newer than this engram ({len(migrations)}): upgrade engram"
        )
    for script in migrations[version:]:
        for statement in statements(script):
            conn.execute(statement)
    if row is None:
        conn.execute(f"INSERT INTO {version_table} (version) VALUES (?)", (len(migrations),))
    else:
        conn.execute(f"UPDATE {version_table} SET version = ?", (len(migrations),))
