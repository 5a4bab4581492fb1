"""Hybrid search runs its words' list while the query is embedded (engram.memory.overlap)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import engram
from engram._time import utcnow
from engram.errors import BackendError
from engram.memory import overlap


class WaitingEmbedder:
    """Embeds only once the words' list has started (or after a timeout), recording which came first."""

    name, dimensions = "waiting-test-model", 2

    def __init__(self) -> None:
        self.text_started = threading.Event()
        self.saw_text_running = False

    def embed(self, texts: list[str]) -> np.ndarray:
        self.saw_text_running = self.text_started.wait(timeout=10)
        return np.tile(np.array([[0.0, 1.0]], dtype=np.float32), (len(texts), 1))


class FailingEmbedder(WaitingEmbedder):
    def embed(self, texts: list[str]) -> np.ndarray:
        raise BackendError("the embedding service is down")


@pytest.fixture
def memory(tmp_path) -> engram.Memory:
    m = engram.Memory(settings=engram.load_settings(database_url=f"sqlite:///{tmp_path / 'o.db'}", embedder="none"))
    m.store_many([
        {"key": "tea", "content": "green tea at the regatta", "embedding": [0.0, 1.0]},
        {"key": "rain", "content": "it rained all day", "embedding": [0.6, 0.8]},
    ])
    yield m
    m.close()


def ranked(memory: engram.Memory, query: str, text):
    """Semantic.ranked in hybrid mode over the default namespace, with ``text`` as the words' list."""
    semantic = memory.parts.semantic
    backend = memory.backend
    return semantic.ranked(
        query, mode="hybrid", limit=10, threshold=None, vector=None, capable=True, has_vectors=lambda: True,
        text=text,
        near=lambda qvec, n: backend.search_vector(qvec, namespace="default", metadata=None, limit=n, now=utcnow()),
        count=lambda node, cap: backend.count_text_matches(node, namespace="default", cap=cap),
        frequency=lambda term: 1,
    )


def test_the_words_list_runs_while_the_query_is_embedded(memory: engram.Memory) -> None:
    embedder = WaitingEmbedder()
    memory.embedder = embedder
    backend = memory.backend
    threads = []

    def text(node, n):
        threads.append(threading.get_ident())
        embedder.text_started.set()
        return backend.search_text(node, namespace="default", metadata=None, limit=n, now=utcnow())

    match, fused = ranked(memory, "tea at the regatta", text)
    assert embedder.saw_text_running, "the query was embedded before the words' list started"
    assert threads and threads[0] != threading.get_ident()
    assert match == "hybrid" and fused[0].entry.key == "tea"
    assert fused[0].fts_rank == 1 and fused[0].vector_rank == 1


def test_search_with_an_embedder_finds_the_same_as_before(memory: engram.Memory) -> None:
    embedder = WaitingEmbedder()
    embedder.text_started.set()
    memory.embedder = embedder
    hits = memory.search("regatta tea", mode="hybrid").results
    assert [h.entry.key for h in hits] == ["tea", "rain"]
    assert hits[0].match_type == "hybrid" and hits[0].fts_rank == 1 and hits[0].vector_rank == 1
    assert hits[1].fts_rank is None and hits[1].vector_rank == 2


def test_an_error_of_the_words_list_reaches_the_caller(memory: engram.Memory) -> None:
    embedder = WaitingEmbedder()
    embedder.text_started.set()
    memory.embedder = embedder

    def text(node, n):
        raise BackendError("the full-text index is unreadable")

    with pytest.raises(BackendError, match="full-text index is unreadable"):
        ranked(memory, "tea", text)


def test_an_embedding_error_reaches_the_caller_and_the_words_list_is_dropped(memory: engram.Memory) -> None:
    memory.embedder = FailingEmbedder()
    with pytest.raises(BackendError, match="embedding service is down"):
        memory.search("tea", mode="hybrid")
    assert memory.search("tea", mode="fts").results[0].entry.key == "tea"  # the store is as it was


def test_a_task_no_worker_started_is_run_by_the_caller() -> None:
    release = threading.Event()
    busy = [overlap.beside(lambda: release.wait(10)) for _ in range(overlap.WORKERS)]
    try:
        queued = overlap.beside(lambda: threading.get_ident())
        assert overlap.joined(queued, lambda: threading.get_ident()) == threading.get_ident()
    finally:
        release.set()
        for f in busy:
            f.result(timeout=10)
