"""One way to translate driver errors into the engram error tree, at the store boundary.

Each driver has one table (:class:`DriverTable`): an ordered list of rules, each
mapping an exception class (narrowed, where needed, by a SQLSTATE or a pattern of
its message) to an engram error class and a message. A store wraps each call to
its driver in ``with translating(TABLE, action, **context):``, as httpx's
``map_httpcore_exceptions`` does; the first rule that matches raises
``Ours(message) from exc``, and an exception no rule matches passes unchanged.

The SQLite table is here (the standard library's driver, used by the store and
the control plane); a table whose driver is an optional extra sits in its
backend's own errors module (``POSTGRES_ERRORS`` in ``_postgres_errors.py``,
``REDIS_ERRORS`` in ``_redis_errors.py``), so this module imports no optional
driver.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from engram.errors import BackendError, Conflict, EngramError

# A message: a str.format template over ``action``, ``exc`` (the driver's text), ``first_line``
# (its first line, or the exception's class name when empty) and the context given to
# ``translating``; or a function (exc, action, context) -> the message.
Message = str | Callable[[BaseException, str, Mapping[str, Any]], str]


def first_line(exc: BaseException) -> str:
    """The first line of a driver's message (their messages run on with hints and context)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sqlstate_is(*states: str) -> Callable[[BaseException], bool]:
    """A rule condition: the exception carries one of these SQLSTATEs."""
    return lambda exc: getattr(exc, "sqlstate", None) in states


def sqlstate_class_is(cls: str, *, or_none: bool = False) -> Callable[[BaseException], bool]:
    """A rule condition: the exception's SQLSTATE is of class ``cls`` (its first two
    characters); ``or_none``: an exception without one (as libpq's own) counts too."""
    return lambda exc: (getattr(exc, "sqlstate", None) or (cls if or_none else "")).startswith(cls)


def message_matches(pattern: str) -> Callable[[BaseException], bool]:
    """A rule condition: the driver's message matches ``pattern`` (a regular expression)."""
    compiled = re.compile(pattern)
    return lambda exc: compiled.search(str(exc)) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    """Exceptions of ``driver`` (for which ``when`` holds) become ``error(message)``."""

    driver: type[BaseException] | tuple[type[BaseException], ...]
    error: type[EngramError]
    message: Message
    when: Callable[[BaseException], bool] | None = None

    def matches(self, exc: BaseException) -> bool:
        return isinstance(exc, self.driver) and (self.when is None or self.when(exc))

    def build(self, exc: BaseException, action: str, context: Mapping[str, Any]) -> EngramError:
        if isinstance(self.message, str):
            text = self.message.format(action=action, exc=exc, first_line=first_line(exc), **context)
        else:
            text = self.message(exc, action, context)
        return self.error(text)


@dataclass(frozen=True, slots=True)
class DriverTable:
    """The rules of one driver, tried in order: put the narrow ones before the broad ones."""

    driver: str  # its name, for reading
    rules: Sequence[Rule]

    def translate(self, exc: BaseException, action: str, context: Mapping[str, Any]) -> EngramError | None:
        """The engram error for ``exc``, or None when no rule matches."""
        for rule in self.rules:
            if rule.matches(exc):
                return rule.build(exc, action, context)
        return None


@contextmanager
def translating(table: DriverTable, action: str, **context: Any) -> Iterator[None]:
    """Translate the driver errors raised inside the block by ``table``.

    Args:
        action: what was being done, in words ("storing an entry"), for the message.
        context: more values the table's messages name (a server address, a hint).
    """
    try:
        yield
    except Exception as exc:
        error = table.translate(exc, action, context)
        if error is None:
            raise
        raise error from exc


SQLITE_LOCKED = (
    "{action} failed: the database stayed locked past the busy timeout; "
    "another process holds a long write transaction"
)

SQLITE = DriverTable(
    "sqlite3",
    [
        Rule(sqlite3.IntegrityError, Conflict, "{action} violates a constraint: {exc}"),
        Rule(sqlite3.OperationalError, BackendError, SQLITE_LOCKED, when=message_matches("locked|busy")),
        Rule(sqlite3.Error, BackendError, "{action} failed: {exc}"),
    ],
)


def _os_failure(exc: BaseException, action: str, context: Mapping[str, Any]) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return f"{action} failed: {reason}"


# The file system, for the stores that are files (the JSON backend).
FILES = DriverTable("os", [Rule(OSError, BackendError, _os_failure)])
