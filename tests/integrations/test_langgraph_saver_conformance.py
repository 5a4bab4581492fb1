"""LangGraph's own checkpointer conformance suite (PyPI ``langgraph-checkpoint-conformance``)
run against ``EngramSaver`` on every engram backend, real databases included.

The package is driven as its README says: register an async generator with
``@checkpointer_test`` and ``await validate(...)``; every capability it detects
(base and extended: delete_for_runs, copy_thread, prune) must pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate

from engram import Memory
from engram.integrations.langgraph import EngramSaver
from tests.conftest import BACKEND_FACTORIES

ALL = {
    "put",
    "put_writes",
    "get_tuple",
    "list",
    "delete_thread",
    "delete_for_runs",
    "copy_thread",
    "prune",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "redis", "memory", "json"])
async def test_engram_saver_passes_langgraph_conformance(
    backend: str, tmp_path: Path
) -> None:
    with BACKEND_FACTORIES[backend](tmp_path) as url, Memory(url) as memory:

        @checkpointer_test(name=f"EngramSaver[{backend}]")
        async def engram_saver():
            yield EngramSaver(memory)

        report = await validate(engram_saver)
        report.print_report()
        failures = {
            cap: r.failures for cap, r in report.results.items() if r.passed is False
        }
        assert not failures, failures
        assert {cap for cap, r in report.results.items() if r.passed} == ALL
