"""The two vector tables of the SQLite backend, described once: entry vectors and message vectors.

Both kinds are stored alike -- a table of float32 BLOBs keyed by an integer
(an entry's ``rowid``, a message's ``seq``) and a change log that triggers
fill -- so the statements that write, load, count and trim them are built
here from a :class:`VectorTable` and run by :mod:`engram.stores.sqlite.vectors`
and :mod:`engram.stores.sqlite.message_vectors`, which keep what differs (how
a vector finds its record, the namespace of entry vectors).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ENTRY_VECTORS", "MESSAGE_VECTORS", "VectorTable", "chunks", "read_in"]

_CHUNK = 500  # bound parameters per IN (...) list


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def read_in(
    read: Any, what: str, sql: str, keys: Sequence[Any], before: Sequence[Any] = (), after: Sequence[Any] = ()
) -> list[Any]:
    """Rows of ``sql`` (its ``{marks}`` an ``IN`` list) over ``keys``, a bounded chunk of parameters at a time."""
    rows: list[Any] = []
    for part in chunks(list(keys)):
        rows.extend(read(what, sql.format(marks=",".join("?" * len(part))), [*before, *part, *after]))
    return rows


@dataclass(frozen=True)
class VectorTable:
    """A vector table and its change log.

    ``scope`` is the condition every read of the table is kept to (entry
    vectors: one namespace, bound as the first parameter; messages: none).
    """

    table: str  # the vectors: (key, ..., content_hash, vector)
    key: str  # its integer key
    log: str  # the change log: (seq, ...)
    what: str  # in messages: "reading {what}s"
    scope: str = ""

    def head(self, read: Any) -> tuple[int, int | None]:
        """The change log's newest number (0 when empty) and its oldest (None when empty)."""
        newest, oldest = read(
            f"reading {self.what} changes",
            # Two subqueries: SQLite answers a lone max() or min() from the key, both together by a scan.
            f"SELECT (SELECT max(seq) FROM {self.log}), (SELECT min(seq) FROM {self.log})",
        )[0]
        return newest or 0, oldest

    def store(self, conn: Any, insert: str, rows: Sequence[Sequence[Any]], keep: int) -> int:
        """Run ``insert`` over ``rows`` and trim the log to its last ``keep`` changes; the rows stored."""
        stored = conn.executemany(insert, rows).rowcount
        conn.execute(f"DELETE FROM {self.log} WHERE seq <= (SELECT max(seq) FROM {self.log}) - ?", (keep,))
        return stored

    def vectors(self, read: Any, keys: Sequence[int] | None, scope: Sequence[Any] = ()) -> list[tuple[int, bytes]]:
        """``(key, float32 bytes)`` of those keys (None: all) within the scope."""
        select = f"SELECT {self.key}, vector FROM {self.table}"
        if keys is None:
            rows = read(f"loading {self.what}s", select + (f" WHERE {self.scope}" if self.scope else ""), scope)
        else:
            within = f"{self.scope} AND " if self.scope else ""
            sql = f"{select} WHERE {within}{self.key} IN ({{marks}})"
            rows = read_in(read, f"reading {self.what}s", sql, keys, scope)
        return [(r[0], r[1]) for r in rows]

    def count(self, read: Any, scope: Sequence[Any] = ()) -> int:
        """Vectors stored within the scope (no parameters: in the whole table)."""
        where = f" WHERE {self.scope}" if scope else ""
        return read(f"counting {self.what}s", f"SELECT count(*) FROM {self.table}{where}", scope)[0][0]

    def clear(self, conn: Any) -> int:
        """Delete every vector; how many there were."""
        n = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]
        conn.execute(f"DELETE FROM {self.table}")
        return n


ENTRY_VECTORS = VectorTable("entry_vectors", "rowid", "vector_changes", "vector", scope="namespace = ?")
MESSAGE_VECTORS = VectorTable("message_vectors", "seq", "message_vector_changes", "message vector")
