"""Fixtures of the conformance suite: every test body runs on every backend.

The backends come from ``BACKEND_FACTORIES`` in ``tests/conftest.py``; adding
a backend there is all it takes to run this whole directory against it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import engram


@pytest.fixture
def memory(memory_factory) -> engram.Memory:
    """A fresh, empty ``engram.Memory`` on the backend under test."""
    return memory_factory()


@pytest.fixture
async def async_memory(memory_factory) -> AsyncIterator[engram.AsyncMemory]:
    """A fresh, empty ``engram.AsyncMemory`` on the backend under test."""
    memory = engram.AsyncMemory(memory_factory.url())  # url() skips what the backend cannot do
    yield memory
    await memory.close()
