"""SQLite schema as ordered migrations; ``user_version``-style table ``engram_schema``.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: entries with an external-content FTS5 index, sessions, tasks.
    """
    CREATE TABLE entries (
        rowid      INTEGER PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        namespace  TEXT NOT NULL,
        key        TEXT NOT NULL,
        content    TEXT NOT NULL,
        metadata   TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expires_at TEXT,
        ns         TEXT NOT NULL,  -- namespace token, matched inside the FTS index
        UNIQUE (namespace, key)
    );
    CREATE INDEX entries_by_updated ON entries (updated_at DESC);
    CREATE INDEX entries_by_namespace_updated ON entries (namespace, updated_at DESC);
    CREATE INDEX entries_by_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL;

    CREATE VIRTUAL TABLE entries_fts USING fts5 (
        ns, key, content,
        content = 'entries', content_rowid = 'rowid',
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN
        INSERT INTO entries_fts (rowid, ns, key, content) VALUES (new.rowid, new.ns, new.key, new.content);
    END;
    CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
        INSERT INTO entries_fts (entries_fts, rowid, ns, key, content)
        VALUES ('delete', old.rowid, old.ns, old.key, old.content);
    END;
    CREATE TRIGGER entries_fts_update AFTER UPDATE OF ns, key, content ON entries BEGIN
        INSERT INTO entries_fts (entries_fts, rowid, ns, key, content)
        VALUES ('delete', old.rowid, old.ns, old.key, old.content);
        INSERT INTO entries_fts (rowid, ns, key, content) VALUES (new.rowid, new.ns, new.key, new.content);
    END;

    CREATE TABLE sessions (
        id         TEXT PRIMARY KEY,
        status     TEXT NOT NULL CHECK (status IN ('active', 'ended', 'error')),
        metadata   TEXT NOT NULL DEFAULT '{}',
        started_at TEXT NOT NULL,
        ended_at   TEXT
    );
    CREATE INDEX sessions_by_status ON sessions (status, started_at DESC);
    CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE ended_at IS NOT NULL;

    CREATE TABLE tasks (
        id           TEXT PRIMARY KEY,
        agent_type   TEXT NOT NULL,
        input        TEXT,
        output       TEXT,
        status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
        session_id   TEXT REFERENCES sessions (id) ON DELETE CASCADE,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        completed_at TEXT
    );
    CREATE INDEX tasks_by_session ON tasks (session_id, created_at DESC);
    CREATE INDEX tasks_by_status ON tasks (status, created_at DESC);
    """,
]
