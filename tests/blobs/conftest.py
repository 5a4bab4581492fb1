"""Fixtures of the blob suite: every test body runs on every blob backend.

``blob_backend`` is one of in-memory, local (a real directory), database on
SQLite and database on PostgreSQL (a fresh schema; skipped locally, failed on
CI, without a server). ``blob_memory(**blob_store)`` opens a ``Memory`` whose
``storage.blob_store`` is that backend plus the settings given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import engram

# backend under test -> its storage.blob_store.type
BLOB_BACKENDS = {"in-memory": "in-memory", "local": "local", "database-sqlite": "database", "database-postgres": "database"}


def open_memory(url: str, blob_store: dict[str, Any], project: str = "default") -> engram.Memory:
    return engram.Memory(
        settings=engram.load_settings(database_url=url, embedder="none", storage={"blob_store": blob_store}),
        project=project,
    )


@pytest.fixture(params=list(BLOB_BACKENDS))
def blob_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def blob_memory(
    blob_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., engram.Memory]]:
    """``blob_memory(**blob_store)`` -> a Memory whose blob store is the backend under test."""
    opened: list[engram.Memory] = []
    url = {
        "in-memory": lambda: "memory://",
        "local": lambda: f"sqlite:///{tmp_path / 'db.sqlite'}",
        "database-sqlite": lambda: f"sqlite:///{tmp_path / 'db.sqlite'}",
        "database-postgres": lambda: request.getfixturevalue("postgres_url"),
    }[blob_backend]()
    base: dict[str, Any] = {"type": BLOB_BACKENDS[blob_backend]}
    if blob_backend == "local":
        base["store_path"] = str(tmp_path / "blobs")

    def make(project: str = "default", **blob_store: Any) -> engram.Memory:
        memory = open_memory(url, {**base, **blob_store}, project)
        opened.append(memory)
        return memory

    yield make
    for memory in opened:
        memory.close()
