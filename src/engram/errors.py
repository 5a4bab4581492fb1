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

    def __init_subclass__(cls, *, status: int | None = None, **kwargs: object) -> None:
        """``class Gone(EngramError, status=410)``: the status beside the parent it refines."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class InvalidInput(EngramError, ValueError):
    """An argument is malformed, out of range or of the wrong type."""

    status = 422
    exit_code = 2


class QuerySyntaxError(InvalidInput, status=400):
    """A search query that the query language cannot parse."""


class ContentTooLarge(InvalidInput, status=413):
    """Content larger than the configured ``max_content_bytes``, or a blob over the blob store's limits."""


class ConfigError(InvalidInput, status=400):
    """Invalid settings: a bad URL, an unknown option, an unreadable config file."""


class NotFound(EngramError, KeyError, status=404):
    """The session, task or record named does not exist."""


class Conflict(EngramError, status=409):
    """The record exists but its state forbids the operation."""


class MissingDependency(EngramError, ImportError, status=500):
    """An optional dependency is missing; the message names the pip extra."""


class Unsupported(EngramError, NotImplementedError, status=501):
    """The backend lacks the capability the operation needs (see ``Store.capabilities``)."""


class LLMError(EngramError, status=502):
    """The language model could not be reached, refused, or timed out after retries."""


class LLMOutputError(LLMError):
    """The model's output did not match the expected schema, even after retries.

    Nothing derived from that output was stored.
    """


class AuthError(EngramError, status=401):
    """No API key, or one that is malformed, unknown, expired or revoked."""


class PermissionDenied(AuthError, status=403):
    """The API key is valid, but its role does not allow the operation."""


class RateLimited(AuthError, status=429):
    """Too many failed authentications from one client; ``retry_after`` says when to retry."""

    def __init__(self, message: str, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after


class SecretKeyError(EngramError, status=500):
    """A stored variable cannot be decrypted with the configured secret key (no plaintext fallback)."""


class BackendError(EngramError, status=503):
    """The storage backend failed: locked, unreachable or corrupt."""


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
