"""PostgreSQL backend specifics: URL and pool settings, migrations, errors, the index condition.

The behaviour every backend shares is in tests/conformance; these tests need a
real server (``postgres_url`` skips without one, or fails on CI).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import traceback

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engram
from engram.config import DBConnectionSettings
from engram.search.query import parse
from engram.search.tsquery import namespace_lexeme, scoped_tsquery
from engram.stores.postgres import sql as q
from engram.stores.postgres.store import (
    check_if_idle,
    parse_postgres_url,
    pool_arguments,
    rank_tsquery,
)

# -- URL and settings (no server needed) ----------------------------------------------------


def test_url_options_are_split_from_libpq_options():
    url, schema, pool = parse_postgres_url(
        "postgres://u:pw@db:5433/app?schema=engram_x&sslmode=disable&pool_size=3&pool_pre_ping=false",
        DBConnectionSettings(),
    )
    assert url == "postgresql://u:pw@db:5433/app?sslmode=disable"
    assert schema == "engram_x"
    assert (pool.pool_size, pool.pool_pre_ping, pool.max_overflow) == (3, False, 3)


@pytest.mark.parametrize(
    "url, words",
    [
        ("postgresql://h/db?schema=Bad-Name", ["schema", "lower-case"]),
        ("postgresql://h/db?schema=a%20b", ["schema"]),
        ("postgresql://h/db?pool_size=zero", ["pool_size"]),
        ("postgresql://h/db?pool_timeout=-1", ["pool_timeout"]),
    ],
)
def test_bad_url_options_are_config_errors(url, words):
    with pytest.raises(engram.ConfigError) as info:
        parse_postgres_url(url, DBConnectionSettings())
    for word in words:
        assert word in str(info.value)


def test_connection_settings_map_onto_the_pool():
    args = pool_arguments(DBConnectionSettings())
    assert (args["min_size"], args["max_size"], args["timeout"], args["max_lifetime"]) == (1, 4, 30.0, 1800.0)
    assert args["check"] is check_if_idle
    custom = DBConnectionSettings(pool_size=5, max_overflow=0, pool_timeout=2, pool_pre_ping=False, pool_recycle=60)
    args = pool_arguments(custom)
    assert (args["min_size"], args["max_size"], args["timeout"], args["max_lifetime"], args["check"]) == (5, 5, 2.0, 60.0, None)


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENGRAM_DB_CONNECTION_SETTINGS", json.dumps({"pool_size": 4, "echo": True}))
    monkeypatch.setenv("ENGRAM_DB_CONNECT_TIMEOUT", "7")
    s = engram.load_settings()
    assert s.db_connection_settings == DBConnectionSettings(pool_size=4, echo=True)
    assert s.db_connection_settings.max_overflow == 3  # keys left out keep their defaults
    assert s.db_connect_timeout == 7


def test_settings_defaults():
    s = engram.load_settings()
    assert s.db_connection_settings.model_dump() == {
        "pool_size": 1, "max_overflow": 3, "pool_timeout": 30, "pool_pre_ping": True, "pool_recycle": 1800, "pool_max_idle": 600,
        "echo": False,
    }
    assert s.db_connect_timeout == 20


@pytest.mark.parametrize(
    "value, words",
    [
        ('{"pool_size": 5, "pool_sise": 6}', ["pool_sise", "unknown"]),
        ('{"pool_size": 5', ["db_connection_settings"]),
        ('{"pool_size": -1}', ["pool_size"]),
    ],
)
def test_bad_connection_settings_are_config_errors(monkeypatch, value, words):
    monkeypatch.setenv("ENGRAM_DB_CONNECTION_SETTINGS", value)
    with pytest.raises(engram.ConfigError) as info:
        engram.load_settings()
    for word in words:
        assert word in str(info.value)


def test_unreachable_server_says_how_to_start_it():
    settings = engram.load_settings(database_url="postgresql://postgres@127.0.0.1:1/test", db_connect_timeout=2)
    with pytest.raises(engram.BackendError) as info:
        engram.Memory(settings=settings)
    message = str(info.value)
    assert "127.0.0.1:1" in message and "start PostgreSQL" in message and "ENGRAM_DATABASE_URL" in message


# -- with a server ----------------------------------------------------------------------------


def test_settings_reach_the_pool(postgres_url):
    settings = engram.load_settings(
        database_url=postgres_url.split("&pool_size")[0],
        db_connection_settings={"pool_size": 2, "max_overflow": 3, "pool_timeout": 4, "pool_recycle": 60},
    )
    with engram.Memory(settings=settings) as memory:
        pool = memory.backend._pool
        assert (pool.min_size, pool.max_size, pool.timeout, pool.max_lifetime) == (2, 5, 4.0, 60.0)


def test_password_is_not_shown(postgres_url):
    with engram.Memory(postgres_url.replace("postgres@", "postgres:s3cret@")) as memory:
        assert "s3cret" not in memory.url and "***" in memory.url
        assert "s3cret" not in memory.stats().url


def test_migrations_are_idempotent(postgres_url):
    with engram.Memory(postgres_url) as memory:
        memory.store("k", "v")
    with engram.Memory(postgres_url) as memory:
        assert memory.backend.schema_version() == len(q.MIGRATIONS)
        assert memory.get("k").content == "v"
        with memory.backend._conn("test") as conn:
            assert conn.execute("SELECT count(*) FROM engram_schema").fetchone()[0] == 1


def test_a_newer_schema_is_refused(postgres_url):
    with engram.Memory(postgres_url) as memory, memory.backend._conn("test") as conn:
        conn.execute("UPDATE engram_schema SET version = version + 1")
    with pytest.raises(engram.ConfigError, match="upgrade engram"):
        engram.Memory(postgres_url)


def _open_and_store(url: str, worker: int, start: mp.Event, errors: mp.Queue) -> None:
    try:
        start.wait(30)
        with engram.Memory(url) as memory:
            memory.store(f"k{worker}", "v")
    except BaseException:  # noqa: BLE001 - everything goes back to the test
        errors.put(traceback.format_exc())


@pytest.mark.slow
def test_processes_starting_together_migrate_once(postgres_url):
    ctx = mp.get_context("spawn")
    start, errors = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_open_and_store, args=(postgres_url, i, start, errors)) for i in range(6)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(90)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, "\n".join(failures)
    with engram.Memory(postgres_url) as memory:
        assert memory.stats().entries == 6
        with memory.backend._conn("test") as conn:
            assert conn.execute("SELECT version FROM engram_schema").fetchall() == [(len(q.MIGRATIONS),)]


def test_namespace_is_inside_the_gin_index_condition(postgres_url):
    with engram.Memory(postgres_url) as memory:
        memory.store_many([{"key": f"k{i}", "content": f"shared words {i}", "namespace": f"ns{i % 5}"} for i in range(200)])
        node = parse("shared")
        sql, params = q.search_sql(scoped_tsquery(node, "ns3"), rank_tsquery(node), {}, 10, engram._time.utcnow())
        with memory.backend._conn("test") as conn:
            conn.execute("SET enable_seqscan = off")  # tiny table: make the planner show the index path
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())
    assert "engram_entries_tsv" in plan
    index_cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert namespace_lexeme("ns3") in index_cond and "share" in index_cond


def test_echo_logs_sql_at_debug(postgres_url, caplog):
    with engram.Memory(postgres_url + "&echo=true") as memory:
        with caplog.at_level(logging.DEBUG, logger="engram.stores.postgres"):
            memory.get("k")
    assert any("SELECT" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_integrity_errors_are_conflicts(postgres_url):
    with engram.Memory(postgres_url) as memory:
        task = memory.task_create("agent", {"x": 1})
        with pytest.raises(engram.Conflict):
            memory.backend.put_task(task.model_copy(update={"session_id": "no-such-session"}))


def test_closed_store_raises_backend_error(postgres_url):
    memory = engram.Memory(postgres_url)
    memory.close()
    memory.close()
    with pytest.raises(engram.BackendError, match="closed"):
        memory.get("k")


def test_tables_live_in_the_schema_of_the_url(postgres_url):
    schema = postgres_url.split("schema=")[1].split("&")[0]
    with engram.Memory(postgres_url) as memory, memory.backend._conn("test") as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()}
    assert {"engram_entries", "engram_sessions", "engram_tasks", "engram_schema"} <= tables


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=80))
def test_no_query_reaches_the_driver_as_an_error(postgres_url, query):
    memory = _shared_memory(postgres_url)
    try:
        memory.search(query, namespace="n")
        memory.search(query)
    except engram.QuerySyntaxError:
        pass


_OPEN: dict[str, engram.Memory] = {}


def _shared_memory(url: str) -> engram.Memory:
    if url not in _OPEN:
        for m in _OPEN.values():
            m.close()
        _OPEN.clear()
        _OPEN[url] = engram.Memory(url)
        _OPEN[url].store("k", "some words to find, e-mail café 404", namespace="n")
    return _OPEN[url]


def test_raw_tsquery_text_is_valid_for_postgres(postgres_url):
    """Every compiled form the tests of the compiler show parses as tsquery on a real server."""
    queries = ['"quick bro"*', "(cat OR dog) -(angry OR sofa)", "e-mail", "s", "x" * 3000, "a AND b OR c"]
    with psycopg.connect(postgres_url.split("?")[0]) as conn:
        for text in queries:
            conn.execute("SELECT %s::tsquery", (scoped_tsquery(parse(text), "ns"),))


@pytest.mark.parametrize(
    ("raised", "expected", "words", "absent"),
    [
        (psycopg.errors.DeadlockDetected("deadlock detected"), engram.Conflict, "concurrent transaction", "start"),
        (psycopg.errors.SerializationFailure("could not serialize"), engram.Conflict, "try again", "start"),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), engram.BackendError,
         "statement timeout", "start PostgreSQL"),  # fmt: skip
        (psycopg.OperationalError("server closed the connection unexpectedly"), engram.BackendError,
         "start PostgreSQL", None),  # fmt: skip
    ],
)
def test_a_server_side_failure_is_not_reported_as_a_server_that_is_down(raised, expected, words, absent):
    """A deadlock or timeout comes from a running server: the error says what happened, not
    "start PostgreSQL" (which only a lost or refused connection earns)."""
    from engram.stores.postgres.errors import PostgresErrors

    with pytest.raises(expected) as caught:
        with PostgresErrors("127.0.0.1:5432/test", DBConnectionSettings())("storing 10 entries"):
            raise raised
    assert words in str(caught.value)
    assert absent is None or absent not in str(caught.value)
