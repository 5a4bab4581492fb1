"""The one driver-error helper: each driver's table maps its exceptions to the error tree,
with the messages the stores have always given."""

from __future__ import annotations

import sqlite3

import pytest

from engram.config import DBConnectionSettings
from engram.errors import BackendError, Conflict, NotFound
from engram.stores._driver_errors import (
    SQLITE,
    DriverTable,
    Rule,
    first_line,
    translating,
)


def raised(table: DriverTable, exc: BaseException, action: str = "storing an entry", **context) -> BaseException:
    with pytest.raises(BaseException) as info, translating(table, action, **context):
        raise exc
    assert info.value is exc or info.value.__cause__ is exc
    return info.value


@pytest.mark.parametrize(
    "exc, error, message",
    [
        (sqlite3.IntegrityError("UNIQUE constraint failed: t.id"), Conflict,
         "storing an entry violates a constraint: UNIQUE constraint failed: t.id"),
        (sqlite3.OperationalError("database is locked"), BackendError,
         "storing an entry failed: the database stayed locked past the busy timeout; "
         "another process holds a long write transaction"),
        (sqlite3.OperationalError("no such table: x"), BackendError, "storing an entry failed: no such table: x"),
        (sqlite3.DatabaseError("file is not a database"), BackendError, "storing an entry failed: file is not a database"),
    ],
)
def test_sqlite_table(exc, error, message) -> None:
    got = raised(SQLITE, exc)
    assert type(got) is error and str(got) == message


def test_postgres_table() -> None:
    psycopg = pytest.importorskip("psycopg")
    psycopg_pool = pytest.importorskip("psycopg_pool")
    from engram.stores.postgres.errors import HOW_TO_START as PG_START
    from engram.stores.postgres.errors import PostgresErrors

    pool = DBConnectionSettings()
    translate = PostgresErrors("db:5432/x", pool, diagnose=lambda: None)
    cases = [
        (psycopg.errors.UniqueViolation("duplicate key value\nDETAIL: more"), Conflict,
         "reading violates a constraint: duplicate key value"),
        (psycopg.OperationalError("server closed the connection"), BackendError,
         f"reading failed: PostgreSQL at db:5432/x: server closed the connection; {PG_START}"),
        (psycopg.errors.UndefinedTable("relation x does not exist"), BackendError,
         "reading failed: PostgreSQL at db:5432/x: relation x does not exist"),
        (psycopg_pool.PoolClosed("closed"), BackendError, "reading failed: the store for db:5432/x is closed"),
    ]
    for exc, error, message in cases:
        with pytest.raises(error) as info, translate("reading"):
            raise exc
        assert str(info.value) == message and info.value.__cause__ is exc
    with pytest.raises(BackendError, match=r"no PostgreSQL connection to db:5432/x became free within pool_timeout="):
        with translate("reading"):
            raise psycopg_pool.PoolTimeout("timeout")
    with pytest.raises(BackendError, match=r"^reading failed: the server is down$"):
        with PostgresErrors("db:5432/x", pool, diagnose=lambda: "the server is down")("reading"):
            raise psycopg_pool.PoolTimeout("timeout")


def test_redis_table() -> None:
    redis = pytest.importorskip("redis")
    from engram.stores.redis.errors import HOW_TO_START as REDIS_START
    from engram.stores.redis.errors import REDIS_ERRORS

    where = {"where": "localhost:6379/0", "how_to_start": REDIS_START}
    got = raised(REDIS_ERRORS, redis.ResponseError("ENGRAM_NOT_FOUND session s1 does not exist"), **where)
    assert type(got) is NotFound and got.args[0] == "session s1 does not exist"
    got = raised(REDIS_ERRORS, redis.ResponseError("ENGRAM_CONFLICT run id r1 is taken"), "storing a run", **where)
    assert type(got) is Conflict and str(got) == "storing a run violates a constraint: run id r1 is taken"
    got = raised(REDIS_ERRORS, redis.ResponseError("WRONGTYPE Operation\nagainst a key"), **where)
    assert type(got) is BackendError and str(got) == "storing an entry failed: Redis at localhost:6379/0: WRONGTYPE Operation"
    got = raised(REDIS_ERRORS, redis.ConnectionError("Connection refused"), **where)
    assert str(got) == f"storing an entry failed: Redis at localhost:6379/0: Connection refused; {REDIS_START}"


def test_what_no_rule_matches_passes_unchanged() -> None:
    error = KeyError("x")
    assert raised(SQLITE, error) is error
    with translating(SQLITE, "nothing"):
        pass


def test_rules_are_tried_in_order_and_may_be_narrowed() -> None:
    table = DriverTable("fake", [
        Rule(ValueError, Conflict, "{action}: {first_line} ({extra})", when=lambda exc: "narrow" in str(exc)),
        Rule(ValueError, BackendError, lambda exc, action, context: f"{action}/{type(exc).__name__}"),
    ])
    assert str(raised(table, ValueError("narrow\nsecond line"), "a", extra="x")) == "a: narrow (x)"
    got = raised(table, ValueError("broad"), "a")
    assert type(got) is BackendError and str(got) == "a/ValueError"
    assert first_line(ValueError("")) == "ValueError"


def test_files_table() -> None:
    from engram.stores._driver_errors import FILES

    got = raised(FILES, PermissionError(13, "Permission denied"), "writing /data")
    assert type(got) is BackendError and str(got) == "writing /data failed: Permission denied"
    assert str(raised(FILES, OSError("odd"), "writing /data")) == "writing /data failed: odd"
