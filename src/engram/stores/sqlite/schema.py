"""SQLite schema as ordered migrations; ``user_version``-style table ``engram_schema``.

Append new migrations at the end; never edit one that has shipped. The
blocks that recur (an FTS5 index and its triggers, a vector table's change
log and its drop-with-the-record triggers) are rendered by the helpers below
to the very statements those migrations shipped with.
"""

from __future__ import annotations

from engram.stores.sqlite.blobs import BLOB_SCHEMA


def _fts_index(table: str, rowid: str, columns: tuple[str, ...]) -> str:
    """An external-content FTS5 index ``<table>_fts`` of ``columns``, kept in step with ``table`` by triggers."""
    fts, cols = f"{table}_fts", ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in (rowid, *columns))
    old = ", ".join(f"old.{c}" for c in (rowid, *columns))
    add = f"        INSERT INTO {fts} (rowid, {cols}) VALUES ({new});\n"
    remove = f"        INSERT INTO {fts} ({fts}, rowid, {cols})\n        VALUES ('delete', {old});\n"
    return (
        f"    CREATE VIRTUAL TABLE {fts} USING fts5 (\n"
        f"        {cols},\n"
        f"        content = '{table}', content_rowid = '{rowid}',\n"
        "        tokenize = 'porter unicode61 remove_diacritics 2'\n"
        "    );\n"
        f"    CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN\n{add}    END;\n"
        f"    CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN\n{remove}    END;\n"
        f"    CREATE TRIGGER {fts}_update AFTER UPDATE OF {cols} ON {table} BEGIN\n{remove}{add}    END;\n"
    )


def _change_logged(vectors: str, log: str, logged: dict[str, str]) -> str:
    """Triggers that log every insert, update and delete of ``vectors`` in ``log`` (column: vectors' column)."""
    columns = ", ".join(logged)
    triggers = ""
    for event, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
        values = ", ".join(f"{row}.{c}" for c in logged.values())
        triggers += (
            f"    CREATE TRIGGER {vectors}_logged_{event} AFTER {event.upper()} ON {vectors} BEGIN\n"
            f"        INSERT INTO {log} ({columns}) VALUES ({values});\n"
            "    END;\n"
        )
    return triggers


def _vector_dropped_with(records: str, vectors: str, key: str) -> str:
    """Triggers that drop a record's vector when the record goes or its content changes."""
    drop = f"        DELETE FROM {vectors} WHERE {key} = old.{key};\n    END;\n"
    return (
        f"    CREATE TRIGGER {records}_vector_delete AFTER DELETE ON {records} BEGIN\n{drop}"
        f"    CREATE TRIGGER {records}_vector_stale AFTER UPDATE OF content ON {records}\n"
        f"    WHEN old.content IS NOT new.content BEGIN\n{drop}"
    )


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

"""
    + _fts_index("entries", "rowid", ("ns", "key", "content"))
    + """
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
    # 2: conversation memory: messages (+ FTS5 with session/user tokens inside
    # the index), session summaries, user profiles, HITL checkpoints.
    """
    CREATE TABLE messages (
        seq          INTEGER PRIMARY KEY,  -- only grows: the stable order of a session
        id           TEXT NOT NULL UNIQUE,
        session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        role         TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        content      TEXT NOT NULL,
        user_id      TEXT,
        agent_id     TEXT,
        metadata     TEXT NOT NULL DEFAULT '{}',
        tool_calls   TEXT,  -- JSON list, NULL when none
        tool_call_id TEXT,
        attachments  TEXT,  -- JSON list, NULL when none
        created_at   TEXT NOT NULL,
        sess         TEXT NOT NULL,  -- session token, matched inside the FTS index
        usr          TEXT NOT NULL   -- user token ('' without a user), likewise
    );
    CREATE INDEX messages_by_session ON messages (session_id, seq);

"""
    + _fts_index("messages", "seq", ("sess", "usr", "content"))
    + """
    CREATE TABLE summaries (
        session_id    TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
        content       TEXT NOT NULL,
        message_count INTEGER NOT NULL,
        last_seq      INTEGER NOT NULL,
        updated_at    TEXT NOT NULL
    );

    CREATE TABLE profiles (
        user_id    TEXT PRIMARY KEY,
        traits     TEXT NOT NULL,  -- JSON: name -> {value, source_message_ids, updated_at}
        updated_at TEXT NOT NULL
    );

    CREATE TABLE checkpoints (
        id         TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        run_id     TEXT,
        state      TEXT NOT NULL,  -- JSON
        status     TEXT NOT NULL CHECK (status IN ('paused', 'resumed')),
        created_at TEXT NOT NULL,
        resumed_at TEXT
    );
    CREATE INDEX checkpoints_by_session ON checkpoints (session_id, created_at DESC);
    CREATE INDEX checkpoints_by_created ON checkpoints (created_at);
    """,
    # 3: embeddings (issue 3). One float32 BLOB per entry, keyed by the entry's
    # rowid; the model they come from; a change log that lets every process
    # keep its in-memory vector index coherent with writes made by others.
    """
    CREATE TABLE entry_vectors (
        rowid        INTEGER PRIMARY KEY,  -- entries.rowid
        namespace    TEXT NOT NULL,
        content_hash BLOB NOT NULL,        -- blake2b-128 of the content embedded
        vector       BLOB NOT NULL         -- float32, little-endian, unit length
    );
    CREATE INDEX entry_vectors_by_namespace ON entry_vectors (namespace);
    CREATE INDEX entry_vectors_by_hash ON entry_vectors (content_hash);

    CREATE TABLE vector_model (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        name       TEXT NOT NULL,
        dimensions INTEGER NOT NULL
    );

    CREATE TABLE vector_changes (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace   TEXT NOT NULL,
        entry_rowid INTEGER NOT NULL
    );
"""
    + _change_logged("entry_vectors", "vector_changes", {"namespace": "namespace", "entry_rowid": "rowid"})
    + """
    -- A vector belongs to the content it embeds: deleting the entry or
    -- changing its content drops the vector.
"""
    + _vector_dropped_with("entries", "entry_vectors", "rowid"),
    # 4: an identity for this database, so files derived from it (the HNSW
    # graphs saved in <db>.vectors/) are never taken for another database's,
    # e.g. after the file was deleted and created again at the same path.
    """
    CREATE TABLE engram_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO engram_meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))));
    """,
    # 5: message embeddings (vector / hybrid message search). One float32 BLOB
    # per message, keyed by its seq, under the store's one vector_model; a
    # change log like vector_changes keeps each process's index coherent.
    """
    CREATE TABLE message_vectors (
        seq          INTEGER PRIMARY KEY,  -- messages.seq
        content_hash BLOB NOT NULL,        -- blake2b-128 of the content embedded
        vector       BLOB NOT NULL         -- float32, little-endian, unit length
    );
    CREATE INDEX message_vectors_by_hash ON message_vectors (content_hash);
    CREATE INDEX messages_by_user ON messages (user_id, seq) WHERE user_id IS NOT NULL;

    CREATE TABLE message_vector_changes (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        message_seq INTEGER NOT NULL
    );
"""
    + _change_logged("message_vectors", "message_vector_changes", {"message_seq": "seq"})
    + """
    -- A vector belongs to the message content it embeds.
"""
    + _vector_dropped_with("messages", "message_vectors", "seq"),
    # 6: sessions by user and agent (issue 16): a chat session takes its first
    # message's user and agent; listing filters on them.
    """
    ALTER TABLE sessions ADD COLUMN user_id TEXT;
    ALTER TABLE sessions ADD COLUMN agent_id TEXT;
    CREATE INDEX sessions_by_user ON sessions (user_id, started_at DESC) WHERE user_id IS NOT NULL;
    CREATE INDEX sessions_by_agent ON sessions (agent_id, started_at DESC) WHERE agent_id IS NOT NULL;
    -- the profile schema (name, version) the traits were extracted to fill
    ALTER TABLE profiles ADD COLUMN schema_name TEXT;
    ALTER TABLE profiles ADD COLUMN schema_version TEXT;
    """,
    # 7: runs of agents inside sessions (issue 16): status and latest checkpoint;
    # resuming is a conditional UPDATE, so two processes cannot both resume a run.
    """
    CREATE TABLE runs (
        id            TEXT PRIMARY KEY,
        session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        user_id       TEXT,
        agent_id      TEXT,
        status        TEXT NOT NULL CHECK (status IN ('running', 'paused', 'error', 'cancelled', 'completed')),
        checkpoint_id TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX runs_by_session ON runs (session_id, updated_at DESC);
    CREATE INDEX runs_by_status ON runs (status, updated_at DESC);
    CREATE INDEX runs_by_user ON runs (user_id, updated_at DESC) WHERE user_id IS NOT NULL;
    """,
    # 8: blobs of the database blob store (issue 12): a row per blob, its bytes in chunks.
    BLOB_SCHEMA,
    # 9: an entry's context (issue 15): the text embedded ahead of its content, NULL without
    # one (and in every row stored before). The vector embeds both, so it goes when either changes.
    """
    ALTER TABLE entries ADD COLUMN context TEXT;
    DROP TRIGGER entries_vector_stale;
    CREATE TRIGGER entries_vector_stale AFTER UPDATE OF content, context ON entries
    WHEN old.content IS NOT new.content OR old.context IS NOT new.context BEGIN
        DELETE FROM entry_vectors WHERE rowid = old.rowid;
    END;
    """,
]
