"""psycopg's errors in the engram error tree: the PostgreSQL table of ``_driver_errors``,
and what a failed connection means (``connect_problem``)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import psycopg
import psycopg_pool

from engram.config import DBConnectionSettings
from engram.errors import BackendError, Conflict
from engram.stores._driver_errors import DriverTable, Rule, first_line, sqlstate_class_is, sqlstate_is, translating

HOW_TO_START = (
    "start PostgreSQL (`sudo service postgresql start`, or `pg_ctlcluster <version> main start`) "
    "or point ENGRAM_DATABASE_URL (or --db) at a running server"
)
TOO_MANY_CLIENTS = "53300"
INVALID_CATALOG_NAME = "3D000"
INVALID_PASSWORD = ("28P01", "28000")


def connect_problem(exc: psycopg.Error, where: str, database: str, limit: int) -> str:
    """What a failed connection means and what to do, by SQLSTATE or, where libpq gives
    none (errors at connection time carry no SQLSTATE), by the server's message.

    ``limit`` is this process's pool maximum, named when the server is out of slots.
    """
    text = first_line(exc)
    low = str(exc).lower()
    state = getattr(exc, "sqlstate", None)
    if state == TOO_MANY_CLIENTS or "too many clients" in low or "connection slots are reserved" in low or (
        "too many connections" in low
    ):
        return (
            f"PostgreSQL at {where} has no free connection slot ({text}): the server's max_connections is "
            f"used up by other clients; each engram process holds at most {limit} (pool_size + max_overflow "
            "in ENGRAM_DB_CONNECTION_SETTINGS): lower it, run fewer processes, or raise max_connections "
            "in postgresql.conf"
        )
    if state == INVALID_CATALOG_NAME or ("database" in low and "does not exist" in low):
        return f"PostgreSQL at {where}: database {database!r} does not exist: create it with `createdb {database}`"
    if state in INVALID_PASSWORD or "authentication failed" in low or "no pg_hba.conf entry" in low:
        return f"PostgreSQL at {where} refused the login ({text}): check the user and password in the URL"
    return f"cannot connect to PostgreSQL at {where}: {text}; {HOW_TO_START}"


def _pool_timeout(exc: BaseException, action: str, context: Mapping[str, Any]) -> str:
    # The pool retries failed connections silently until the timeout; say why they fail.
    diagnose, pool = context["diagnose"], context["pool"]
    problem = diagnose() if diagnose is not None else None
    if problem is not None:
        return f"{action} failed: {problem}"
    return (
        f"{action} failed: no PostgreSQL connection to {context['where']} became free within "
        f"pool_timeout={pool.pool_timeout:g}s (at most {pool.pool_size + pool.max_overflow} "
        "connections): raise pool_size/max_overflow in ENGRAM_DB_CONNECTION_SETTINGS, "
        f"or check that the server is reachable ({HOW_TO_START})"
    )


def _no_slot(exc: BaseException, action: str, context: Mapping[str, Any]) -> str:
    pool = context["pool"]
    assert isinstance(exc, psycopg.Error)
    return f"{action} failed: {connect_problem(exc, context['where'], '', pool.pool_size + pool.max_overflow)}"


# psycopg's (and its pool's) errors in the engram error tree; the messages name the server (``where``).
POSTGRES_ERRORS = DriverTable(
    "psycopg",
    [
        Rule(psycopg_pool.PoolTimeout, BackendError, _pool_timeout),
        Rule(psycopg_pool.PoolClosed, BackendError, "{action} failed: the store for {where} is closed"),
        Rule(psycopg.errors.IntegrityError, Conflict, "{action} violates a constraint: {first_line}"),
        Rule(psycopg.OperationalError, BackendError, _no_slot, when=sqlstate_is(TOO_MANY_CLIENTS)),
        # A deadlock or a serialization failure: the server is fine, the transaction was rolled back.
        Rule(psycopg.OperationalError, Conflict,
             "{action} failed: it collided with a concurrent transaction on PostgreSQL at {where} ({first_line}); "
             "nothing of it was written: try again", when=sqlstate_class_is("40")),  # fmt: skip
        # Only a lost or refused connection (no SQLSTATE, or class 08) means the server may be down.
        Rule(psycopg.OperationalError, BackendError, "{action} failed: PostgreSQL at {where}: {first_line}; {how_to_start}",
             when=sqlstate_class_is("08", or_none=True)),  # fmt: skip
        Rule(psycopg.Error, BackendError, "{action} failed: PostgreSQL at {where}: {first_line}"),
    ],
)


class PostgresErrors:
    """``with self._translated(action):`` translates psycopg errors by ``POSTGRES_ERRORS``, naming the server."""

    def __init__(self, where: str, pool: DBConnectionSettings, diagnose: Any = None):
        # diagnose: () -> why a direct connection fails now, or None
        self.context = {"where": where, "pool": pool, "diagnose": diagnose, "how_to_start": HOW_TO_START}

    def __call__(self, action: str) -> AbstractContextManager[None]:
        return translating(POSTGRES_ERRORS, action, **self.context)
