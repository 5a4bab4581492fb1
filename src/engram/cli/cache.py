"""``engram cache stats|clear``: the cache layer of the store (``storage.cache``)."""

from __future__ import annotations

import click

from engram.cli._common import _memory, json_option
from engram.cli._output import emit_json, out


@click.group()
def cache() -> None:
    """Show and clear the cache (storage.cache: in-memory or Redis).

    An in-memory cache lives in one process, so from the command line it is
    always empty: these commands are for a Redis cache, which every process
    of the store shares.
    """


@cache.command("stats")
@json_option
def stats(as_json: bool) -> None:
    """Show the cache's backend and how many keys it holds for this store.

    keys: what memory.cache holds; embeddings: vectors cached by model and
    content hash; search results: cached answers to searches (when
    storage.cache.search_results is on). Hits and misses count this command's
    own reads only, so they are 0 here.
    """
    memory = _memory()
    user = memory.cache.stats()
    report = {
        "backend": user.backend,
        "shared": memory.caches.backend.shared,
        "namespace": memory.caches.namespace.rstrip(":"),
        "keys": user.size,
        **{k.replace("searches", "search_results"): v for k, v in memory.caches.engram_sizes().items()},
        "search_cache": memory.caches.searches is not None,
        "hits": user.hits,
        "misses": user.misses,
    }
    if as_json:
        emit_json(report)
        return
    for name, value in report.items():
        out.print(f"{name.replace('_', ' ')}: {value}", markup=False, highlight=False)


@cache.command("clear")
@click.option("--prefix", "-p", default=None, metavar="P", help="Only keys starting with P (default: every key).")
@click.option("--embeddings", is_flag=True, help="Also drop the cached embeddings of this store.")
@click.option("--search-results", is_flag=True, help="Also drop the cached search results of this store.")
@json_option
def clear(prefix: str | None, embeddings: bool, search_results: bool, as_json: bool) -> None:
    """Remove this store's keys from the cache (memory.cache's, or only those starting with --prefix).

    Other stores' (projects') keys are never touched. Cached embeddings and
    search results stay unless --embeddings / --search-results say otherwise;
    dropping them is always safe (they are computed again when needed).
    """
    memory = _memory()
    removed = memory.cache.clear(prefix)
    dropped = memory.caches.clear_engram_values(embeddings=embeddings, searches=search_results)
    if as_json:
        emit_json({"removed": removed, "engram_values_removed": dropped})
    else:
        what = f"key{'' if removed == 1 else 's'}" + (f" starting with {prefix!r}" if prefix else "")
        extra = f" and {dropped} cached embedding(s)/search result(s)" if embeddings or search_results else ""
        out.print(f"removed {removed} {what}{extra}", markup=False, highlight=False)
