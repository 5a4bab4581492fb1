"""PostgreSQL pools fit a stock server, and connection failures say what is wrong.

With default settings one ``Memory`` holds at most pool_size + max_overflow
connections (documented in docs/backends.md), so 20 processes fit
``max_connections = 100``; "too many clients", a missing database and a
refused connection each get their own message.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest

import engram
from engram.config import DBConnectionSettings
from engram.stores.postgres.store import connect_problem

POSTGRES = ("PostgreSQL", "127.0.0.1", 5432, "start it with `sudo service postgresql start` (see DEVELOPERS.md)")
POSTGRES_TEST_URL = f"postgresql://postgres@{POSTGRES[1]}:{POSTGRES[2]}/test"

DEFAULT_MAX = DBConnectionSettings().pool_size + DBConnectionSettings().max_overflow
PROCESSES = 20
WRITES = 50

WRITER = """
import sys, engram
url, worker, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as m:
    for i in range(writes):
        m.store(f"w{worker}-{i}", f"write {i} of worker {worker}")
"""


@pytest.fixture
def server(postgres_url):
    """Skips (fails on CI) without a PostgreSQL server, through the shared ``postgres_url`` fixture."""
    return postgres_url


@pytest.fixture
def schema_url(postgres_url):
    """A fresh schema's URL without pool options (so the defaults apply), and an application name."""
    app = f"engram-pool-{uuid.uuid4().hex[:8]}"
    return f"{postgres_url.split('&pool_size')[0]}&application_name={app}", app


def connections_of(app: str) -> int:
    with psycopg.connect(POSTGRES_TEST_URL, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()[0]


def connections_per_process(app: str) -> dict[str, int]:
    """Connections held now by each process whose application_name starts with ``app``."""
    with psycopg.connect(POSTGRES_TEST_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE application_name LIKE %s GROUP BY 1",
            (app + "-%",),
        ).fetchall()
    return dict(rows)


def test_the_default_pool_is_small():
    assert DEFAULT_MAX <= 5
    assert DBConnectionSettings().pool_size <= 1


def test_one_memory_holds_at_most_the_documented_maximum(schema_url):
    url, app = schema_url
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as m:
        peak = 0
        stop = threading.Event()

        def write(worker: int) -> None:
            i = 0
            while not stop.is_set():
                m.store(f"t{worker}-{i}", "x" * 100)
                i += 1

        threads = [threading.Thread(target=write, args=(w,)) for w in range(12)]
        for t in threads:
            t.start()
        try:
            for _ in range(10):
                time.sleep(0.1)
                peak = max(peak, connections_of(app))
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert 1 <= peak <= DEFAULT_MAX
        assert m.stats().entries > 12


def test_twenty_processes_with_default_settings_all_open_and_write(schema_url):
    url, app = schema_url
    engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")).close()  # migrate once
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, f"{url}-w{w}", str(w), str(WRITES)],  # its own application_name
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(PROCESSES)
    ]
    peak_total = peak_one = 0
    while any(p.poll() is None for p in procs):
        held = connections_per_process(app)
        peak_total = max(peak_total, sum(held.values()))
        peak_one = max(peak_one, *held.values(), 0)
        time.sleep(0.05)
    errors = [p.stderr.read().decode() for p in procs if p.returncode != 0]
    assert not errors, errors[0]
    assert 1 <= peak_one <= DEFAULT_MAX  # what one Memory holds, measured in pg_stat_activity
    assert peak_total <= PROCESSES * DEFAULT_MAX
    with engram.Memory(settings=engram.load_settings(database_url=url, embedder="none")) as m:
        assert m.stats().entries == PROCESSES * WRITES


def test_a_missing_database_says_createdb(server):
    name = f"engram_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(engram.BackendError) as info:
        engram.Memory(f"postgresql://postgres@{POSTGRES[1]}:{POSTGRES[2]}/{name}")
    message = str(info.value)
    assert f"createdb {name}" in message and "does not exist" in message
    assert "start PostgreSQL" not in message


def test_a_refused_connection_says_how_to_start_postgresql():
    with pytest.raises(engram.BackendError) as info:
        engram.Memory("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    assert "start PostgreSQL" in str(info.value) and "127.0.0.1:1" in str(info.value)


@pytest.fixture
def limited_role(server):
    """A login role allowed one connection, dropped afterwards."""
    role = f"engram_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_TEST_URL, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1")  # our own generated name
        conn.execute(f"GRANT CREATE ON DATABASE test TO {role}")
    yield role
    with psycopg.connect(POSTGRES_TEST_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        conn.execute(f"DROP OWNED BY {role} CASCADE")
        conn.execute(f"DROP ROLE {role}")


def test_too_many_clients_is_not_start_postgresql(limited_role):
    url = f"postgresql://{limited_role}@{POSTGRES[1]}:{POSTGRES[2]}/test"
    with psycopg.connect(url):  # the role's one connection is taken
        with pytest.raises(engram.BackendError) as info:
            engram.Memory(f"{url}?schema={limited_role}")
    message = str(info.value)
    assert "no free connection slot" in message and "max_connections" in message
    assert f"at most {DEFAULT_MAX}" in message
    assert "start PostgreSQL" not in message


def _connect_when_free(url: str, wait: float = 10.0) -> psycopg.Connection:
    """Connect once the role's only slot is free: the server frees a closed connection's slot
    only when its backend process has exited, a moment after the client closed it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return psycopg.connect(url)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_too_many_clients_after_opening_is_explained_not_just_a_pool_timeout(limited_role):
    url = f"postgresql://{limited_role}@{POSTGRES[1]}:{POSTGRES[2]}/test?schema={limited_role}"
    with engram.Memory(f"{url}&pool_size=0&pool_timeout=1") as m:
        with _connect_when_free(url.split("?")[0]):  # takes the slot before the pool's first connection
            with pytest.raises(engram.BackendError) as info:
                m.store("k", "v")
    message = str(info.value)
    assert "no free connection slot" in message and "start PostgreSQL" not in message


def test_connect_problem_maps_a_real_server_error(server):
    """The mapping, fed the error the server really sends (SQLSTATE where it is given)."""
    with psycopg.connect(POSTGRES_TEST_URL, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'sorry, too many clients already' USING ERRCODE = '53300'; END $$")
    assert info.value.sqlstate == "53300"
    assert "no free connection slot" in connect_problem(info.value, "db:5432/x", "x", 4)
    with pytest.raises(psycopg.Error) as info:
        psycopg.connect(f"postgresql://postgres@{POSTGRES[1]}:{POSTGRES[2]}/engram_nope_{uuid.uuid4().hex[:6]}")
    assert "createdb engram_nope_" in connect_problem(info.value, "db:5432/x", "engram_nope_", 4)
