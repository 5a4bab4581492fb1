"""A first taste of engram on the embedded default store (SQLite in the user data directory).

Run it with `make run`. It stores a few memories, searches them and prints what it found.
"""

from __future__ import annotations

import engram

MEMORIES = [
    ("diet", "Alice is vegetarian and avoids mushrooms.", {"kind": "preference"}),
    ("pet", "Alice adopted a rescue greyhound named Comet last spring.", {"kind": "fact"}),
    ("job", "Alice works as a nurse on night shifts at the city hospital.", {"kind": "fact"}),
    ("trip", "Alice is planning a hiking trip to the Dolomites in September.", {"kind": "plan"}),
]
QUERIES = ["dog OR greyhound", "hiking trip", "night*", "Alice -hospital", '"rescue greyhound"']


def main() -> None:
    with engram.open() as memory:
        print(f"store: {memory.url}\n")
        session = memory.session_start({"demo": "quickstart"})
        memory.store_many(
            [{"key": k, "content": c, "metadata": m} for k, c, m in MEMORIES], namespace="demo:alice"
        )
        for query in QUERIES:
            result = memory.search(query, namespace="demo:alice", limit=3)
            print(f"search {query!r}: {result.count} hit(s)")
            for hit in result.results:
                print(f"  {hit.score:6.3f}  {hit.entry.key:<5} {hit.entry.content}")
        facts = memory.list(namespace="demo:alice", metadata={"kind": "fact"})
        print(f"\nfacts: {', '.join(e.key for e in facts)}")
        memory.session_end(session.id)
        print(f"namespaces: {', '.join(memory.namespaces())}")
        print("\nTry the CLI too:  .venv/bin/engram search greyhound --namespace demo:alice")


if __name__ == "__main__":
    main()
