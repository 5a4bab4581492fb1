"""Rows of the SQL backends -> records: one codec for SQLite and PostgreSQL.

Both backends select each kind's columns in the same order (``*_COLUMNS`` in
``stores/sqlite/sql.py``, ``chat_sql.py`` and ``stores/postgres/sql.py``, ``chat_sql.py``).
What differs is what the driver hands back, which a :class:`Dialect` says:

- SQLite gives JSON columns as text and times as ISO-8601 text;
- PostgreSQL gives ``jsonb`` decoded and ``timestamptz`` as datetimes, and follows each text
  column that may hold NUL (entry, message and summary content; ``text`` cannot) by a flag
  saying the text was stored as a JSON string.

The readers are built once per dialect as closures (``RowCodec``), so the per-row work is
what it was when each backend wrote its own: every search and history read decodes here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from engram._time import from_iso
from engram.models import Attachment, Checkpoint, Entry, Message, Profile, Run, Session, Summary, Task, Trait

Model = TypeVar("Model")
Reader = Callable[[Sequence[Any]], Model]

_set = object.__setattr__


def built(cls: type[Model], values: dict[str, Any]) -> Model:
    """A model from trusted values naming every field (read back from our own tables).

    What ``model_construct`` builds when every field is given, in a quarter of the time
    (it loops over aliases and defaults).
    """
    obj = object.__new__(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def utc(value: datetime | None) -> datetime | None:
    """A driver's aware datetime in UTC (None stays None)."""
    return None if value is None else value.astimezone(timezone.utc)


def _utc_set(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _json_text(value: str) -> Any:
    return {} if value == "{}" else json.loads(value)  # most metadata is empty: skip the parser


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Dialect:
    """What one driver hands back for the columns the codec reads."""

    time: Callable[[Any], datetime | None]  # a time column (NULL: None)
    time_set: Callable[[Any], datetime]  # a time column that is never NULL
    json: Callable[[Any], Any]  # a JSON column that is not NULL
    escapes_text: bool  # content columns are followed by an "escaped" flag


SQLITE = Dialect(time=from_iso, time_set=datetime.fromisoformat, json=_json_text, escapes_text=False)
POSTGRES = Dialect(time=utc, time_set=_utc_set, json=_same, escapes_text=True)


class RowCodec:
    """A reader per kind for one :class:`Dialect`: ``codec.entry(row)`` -> ``Entry``, and so on."""

    def __init__(self, dialect: Dialect):
        self.dialect = dialect
        time, time_set, load = dialect.time, dialect.time_set, dialect.json
        x = int(dialect.escapes_text)  # columns after an escaped text column move by one

        def text(value: str, escaped: Any) -> str:
            return json.loads(value) if escaped else value

        def entry(row: Sequence[Any]) -> Entry:
            values = {
                "id": row[0],
                "key": row[1],
                "namespace": row[2],
                "content": text(row[3], row[4]) if x else row[3],
                "metadata": load(row[4 + x]),
                "created_at": time_set(row[5 + x]),
                "updated_at": time_set(row[6 + x]),
                "expires_at": time(row[7 + x]),
                "context": row[8 + x],  # SQLite's text, PostgreSQL's json (a string, decoded), or NULL
            }
            return built(Entry, values)

        def message(row: Sequence[Any]) -> Message:
            calls, files = row[7 + x], row[9 + x]
            values = {
                "id": row[0],
                "session_id": row[1],
                "role": row[2],
                "content": text(row[3], row[4]) if x else row[3],
                "user_id": row[4 + x],
                "agent_id": row[5 + x],
                "metadata": load(row[6 + x]),
                "tool_calls": load(calls) if calls else [],
                "tool_call_id": row[8 + x],
                "attachments": [Attachment.model_construct(**a) for a in load(files)] if files else [],
                "created_at": time_set(row[10 + x]),
                "seq": row[11 + x],
            }
            return built(Message, values)

        def session(row: Sequence[Any]) -> Session:
            return Session.model_construct(
                id=row[0], status=row[1], metadata=load(row[2]), started_at=time(row[3]), ended_at=time(row[4]),
                user_id=row[5], agent_id=row[6],
            )  # fmt: skip

        def task(row: Sequence[Any]) -> Task:
            return Task.model_construct(
                id=row[0], agent_type=row[1], input=None if row[2] is None else load(row[2]),
                output=None if row[3] is None else load(row[3]), status=row[4], session_id=row[5],
                created_at=time(row[6]), updated_at=time(row[7]), completed_at=time(row[8]),
            )  # fmt: skip

        def summary(row: Sequence[Any]) -> Summary:
            return Summary.model_construct(
                session_id=row[0], content=text(row[1], row[2]) if x else row[1], message_count=row[2 + x],
                last_seq=row[3 + x], updated_at=time(row[4 + x]),
            )  # fmt: skip

        def profile(row: Sequence[Any]) -> Profile:
            traits = {
                name: Trait.model_construct(
                    value=t["value"], source_message_ids=t["source_message_ids"], updated_at=from_iso(t["updated_at"])
                )
                for name, t in load(row[1]).items()
            }
            return Profile.model_construct(
                user_id=row[0], traits=traits, updated_at=time(row[2]), schema_name=row[3], schema_version=row[4]
            )

        def checkpoint(row: Sequence[Any]) -> Checkpoint:
            return Checkpoint.model_construct(
                id=row[0], session_id=row[1], run_id=row[2], state=load(row[3]), status=row[4],
                created_at=time(row[5]), resumed_at=time(row[6]),
            )  # fmt: skip

        def run(row: Sequence[Any]) -> Run:
            return Run.model_construct(
                id=row[0], session_id=row[1], user_id=row[2], agent_id=row[3], status=row[4], checkpoint_id=row[5],
                created_at=time(row[6]), updated_at=time(row[7]),
            )  # fmt: skip

        self.entry: Reader[Entry] = entry
        # How many columns an entry takes (``ENTRY_COLUMNS``): a query's own columns come after them.
        self.entry_width = 9 + x
        self.message: Reader[Message] = message
        self.session: Reader[Session] = session
        self.task: Reader[Task] = task
        self.summary: Reader[Summary] = summary
        self.profile: Reader[Profile] = profile
        self.checkpoint: Reader[Checkpoint] = checkpoint
        self.run: Reader[Run] = run


SQLITE_ROWS = RowCodec(SQLITE)
POSTGRES_ROWS = RowCodec(POSTGRES)


def first(rows: Sequence[Sequence[Any]], read: Reader[Model]) -> Model | None:
    """The record of the first row, or None when there is none (a lookup by id)."""
    return read(rows[0]) if rows else None


def paged(fetch: Callable[[Any], list[Any]], read: Reader[Model], position: int, start: Any) -> Iterator[Model]:
    """Every record, a page at a time (export and copy): ``fetch(after)`` returns the page of
    rows after ``after``, the value of their column ``position``; an empty page ends it."""
    after = start
    while rows := fetch(after):
        yield from map(read, rows)
        after = rows[-1][position]
