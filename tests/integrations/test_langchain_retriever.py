"""``EngramRetriever`` through LangChain's standard retriever tests (``langchain-tests``
``RetrieversIntegrationTests``), over engram stores holding real documents, plus its own options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests import RetrieversIntegrationTests

from engram import Memory
from engram.integrations.langchain import EngramRetriever
from tests.conftest import BACKEND_FACTORIES

DOCS = {
    "espresso": "Espresso is coffee brewed by forcing hot water through finely ground beans.",
    "latte": "A latte is espresso coffee with steamed milk.",
    "cold-brew": "Cold brew coffee steeps ground beans in cold water for hours.",
    "green-tea": "Green tea is brewed from unoxidized leaves.",
    "pour-over": "Pour-over coffee drips hot water through a paper filter.",
}


def _fill(memory: Memory) -> None:
    memory.store_many(
        [
            {
                "key": k,
                "content": v,
                "metadata": {"drink": "tea" if "tea" in k else "coffee"},
            }
            for k, v in DOCS.items()
        ],
        namespace="drinks",
    )


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def memory(request: pytest.FixtureRequest, tmp_path: Path):
    with BACKEND_FACTORIES[request.param](tmp_path) as url, Memory(url) as m:
        _fill(m)
        yield m


class TestEngramRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _memory(self, memory: Memory) -> None:
        self.memory = memory

    @property
    def retriever_constructor(self) -> type[EngramRetriever]:
        return EngramRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.memory, "namespace": "drinks"}

    @property
    def retriever_query_example(self) -> str:
        return "coffee"


def test_options_scope_the_search(memory: Memory) -> None:
    memory.store(
        "tea-note",
        "coffee is not tea",
        namespace="elsewhere",
        metadata={"drink": "tea"},
    )
    everywhere = EngramRetriever(memory=memory, k=10).invoke("coffee")
    assert "tea-note" in {d.metadata["key"] for d in everywhere}
    docs = EngramRetriever(memory=memory, namespace="drinks", k=10, mode="fts").invoke(
        "coffee"
    )
    assert {d.metadata["key"] for d in docs} == {
        "espresso",
        "latte",
        "cold-brew",
        "pour-over",
    }
    assert all(
        d.metadata["match_type"] == "fts" and d.metadata["score"] > 0 for d in docs
    )
    assert docs[0].id and docs[0].page_content == DOCS[docs[0].metadata["key"]]
    brewed = EngramRetriever(memory=memory, k=10, filter={"drink": "tea"}).invoke(
        "brewed"
    )
    assert [d.metadata["key"] for d in brewed] == ["green-tea"]
    assert (
        len(EngramRetriever(memory=memory, namespace="drinks").invoke("coffee", k=2))
        == 2
    )
    with pytest.raises(TypeError, match="unknown search option"):
        EngramRetriever(memory=memory).invoke("coffee", top=2)
