"""The one error tree of engram.

Every error a user can see is an ``EngramError``; driver errors are translated
at the store boundary (``raise Ours(msg) from exc``) so callers never have to
catch sqlite3/psycopg/redis exceptions::

    EngramError
    ├── InvalidInput (ValueError)          bad argument: fix the call and retry
    │   ├── QuerySyntaxError               a search query that cannot be parsed
    │   ├── ContentTooLarge                content or a blob over the configured size limit
    │   └── ConfigError                    bad settings, URL or config file
    ├── NotFound (KeyError)                the record named does not exist
    ├── Conflict                           the record is not in a state that allows it
    ├── MissingDependency (ImportError)    an optional extra is not installed
    ├── Unsupported (NotImplementedError)  the backend does not offer this capability
    ├── LLMError                           the language model failed or gave unusable output
    │   └── LLMOutputError                 its output did not match the schema, after retries
    ├── AuthError                          the server refused the caller (401)
    │   ├── PermissionDenied               the key is valid but its role may not do this (403)
    │   └── RateLimited                    too many failed authentications from one client (429)
    ├── SecretKeyError                     the secret key cannot decrypt a stored variable
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
    """Content larger than the configured ``max_content_bytes``, or a blob over the blob store's limits."""

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


class Unsupported(EngramError, NotImplementedError):
    """The backend lacks the capability the operation needs (see ``Store.capabilities``)."""

    status = 501


class LLMError(EngramError):
    """The language model could not be reached, refused, or timed out after retries."""

    status = 502


class LLMOutputError(LLMError):
    """The model's output did not match the expected schema, even after retries.

    Nothing derived from that output was stored.
    """


class AuthError(EngramError):
    """No API key, or one that is malformed, unknown, expired or revoked."""

    status = 401


class PermissionDenied(AuthError):
    """The API key is valid, but its role does not allow the operation."""

    status = 403


class RateLimited(AuthError):
    """Too many failed authentications from one client; ``retry_after`` says when to retry."""

    status = 429

    def __init__(self, message: str, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after


class SecretKeyError(EngramError):
    """A stored variable cannot be decrypted with the configured secret key (no plaintext fallback)."""

    status = 500


class BackendError(EngramError):
    """The storage backend failed: locked, unreachable or corrupt."""

    status = 503


__all__ = [
    "AuthError",
    "BackendError",
    "ConfigError",
    "Conflict",
    "ContentTooLarge",
    "EngramError",
    "InvalidInput",
    "LLMError",
    "LLMOutputError",
    "MissingDependency",
    "NotFound",
    "PermissionDenied",
    "QuerySyntaxError",
    "RateLimited",
    "SecretKeyError",
    "Unsupported",
]
