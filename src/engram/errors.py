"""The one error tree of engram.

Every error a user can see is an ``EngramError``; driver errors are translated
at the store boundary (``raise Ours(msg) from exc``) so callers never have to
catch sqlite3/psycopg/redis exceptions::

    EngramError
    ├── InvalidInput (ValueError)          bad argument: fix the call and retry
    │   ├── QuerySyntaxError               a search query that cannot be parsed
    │   ├── ContentTooLarge                content over the configured size limit
    │   └── ConfigError                    bad settings, URL or config file
    ├── NotFound (KeyError)                the record named does not exist
    ├── Conflict                           the record is not in a state that allows it
    ├── MissingDependency (ImportError)    an optional extra is not installed
    └── BackendError                       the database failed (locked, unreachable, corrupt)

Each class carries ``status`` (the HTTP status the server answers with) and
``exit_code`` (what the CLI exits with: 2 for bad input, 1 for the rest).
"""

from __future__ import annotations


class EngramError(Exception):
    """Base of every error engram raises on purpose."""

    status = 500
    exit_code = 1

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class InvalidInput(EngramError, ValueError):
    """An argument is malformed, out of range or of the wrong type."""

    status = 422
    exit_code = 2


class QuerySyntaxError(InvalidInput):
    """A search query that the query language cannot parse."""

    status = 400


class ContentTooLarge(InvalidInput):
    """Content larger than the configured ``max_content_bytes``."""

    status = 413


class ConfigError(InvalidInput):
    """Invalid settings: a bad URL, an unknown option, an unreadable config file."""

    status = 400


class NotFound(EngramError, KeyError):
    """The session, task or record named does not exist."""

    status = 404


class Conflict(EngramError):
    """The record exists but its state forbids the operation."""

    status = 409


class MissingDependency(EngramError, ImportError):
    """An optional dependency is missing; the message names the pip extra."""

    status = 500


class BackendError(EngramError):
    """The storage backend failed: locked, unreachable or corrupt."""

    status = 503


__all__ = [
    "BackendError",
    "ConfigError",
    "Conflict",
    "ContentTooLarge",
    "EngramError",
    "InvalidInput",
    "MissingDependency",
    "NotFound",
    "QuerySyntaxError",
]
