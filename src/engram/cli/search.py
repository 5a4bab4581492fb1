"""``engram search``: entries by words and meaning."""

from __future__ import annotations

import click

from engram.cli._common import (
    _memory,
    json_option,
    parse_json_option,
    search_mode_options,
)
from engram.cli._output import _entries_table, emit_json, out


@click.command()
@click.argument("query")
@click.option("--namespace", "-n", default=None, help="Only this namespace (default: all).")
@click.option("--limit", default=10, show_default=True, help="How many results.")
@click.option("--metadata", metavar="JSON", help="Only entries whose metadata has these values.")
@search_mode_options("embeddings exist")
@json_option
def search(
    query: str, namespace: str | None, limit: int, metadata: str | None, mode: str, threshold: float | None, as_json: bool
) -> None:
    """Search by words and meaning. Query language: words, "exact phrase", a OR b, a AND b, prefix*, -excluded, (groups)."""
    result = _memory().search(
        query, namespace=namespace, limit=limit, metadata=parse_json_option("--metadata", metadata),
        mode=mode, threshold=threshold,
    )
    if as_json:
        emit_json(result)
    elif not result.results:
        out.print("no matches")
    else:
        out.print(_entries_table([h.entry for h in result.results], [h.score for h in result.results]))
