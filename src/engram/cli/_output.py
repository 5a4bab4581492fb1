"""What the CLI prints: the two consoles, JSON output, tables and the progress bar."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def emit_json(value: Any) -> None:
    """Print ``value`` (models, lists and dicts of them) as indented JSON on stdout."""
    click.echo(json.dumps(_to_json(value), ensure_ascii=False, indent=2))


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _show(record: Any, as_json: bool) -> None:
    if as_json:
        emit_json(record)
        return
    for name, value in record.model_dump(mode="json").items():
        if value is not None:
            out.print(f"{name}: {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}", markup=False)


def _done(value: Any, as_json: bool, line: str) -> None:
    """What a command did: ``value`` as JSON, or ``line`` saying it."""
    if as_json:
        emit_json(value)
    else:
        out.print(line)


def _show_id(record: Any, as_json: bool) -> None:
    """A record just made: its id alone (for scripts to capture), or the whole record as JSON."""
    _done(record, as_json, record.id)


def _records(records: list[Any], columns: list[str], as_json: bool, empty: str | None = None) -> None:
    """``records`` as JSON or as a table of ``columns``; ``empty``, if given, is printed instead of an empty table."""
    if as_json:
        emit_json(records)
    elif not records and empty is not None:
        out.print(empty)
    else:
        out.print(_table(records, columns))


# Columns people copy into the next command: shown whole on one line, never cut with "…".
_IDENTIFIERS = frozenset({"id", "prefix", "key_prefix", "session_id"})


def _table(records: list[Any], columns: list[str]) -> Table:
    """A table of ``columns`` of ``records``; identifiers stay whole, other cells fold onto more lines."""
    rows = [r.model_dump(mode="json") for r in records]
    cells = [[("" if data[c] is None else str(data[c]))[:60] for c in columns] for data in rows]
    table = Table()
    for i, c in enumerate(columns):
        if c in _IDENTIFIERS:
            table.add_column(c, no_wrap=True, min_width=max((len(row[i]) for row in cells), default=0))
        else:
            table.add_column(c, overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


def _entries_table(entries: list[Any], score: list[float] | None = None) -> Table:
    table = Table(show_lines=False)
    table.add_column("namespace", overflow="fold")  # folded, not cut: people copy them into `engram get`
    table.add_column("key", overflow="fold")
    if score is not None:
        table.add_column("score", justify="right")
    table.add_column("content", overflow="fold")
    table.add_column("updated")
    for i, e in enumerate(entries):
        content = e.content if len(e.content) <= 120 else e.content[:117] + "..."
        row = [e.namespace, e.key] + ([f"{score[i]:.3f}"] if score is not None else [])
        table.add_row(*row, content, f"{e.updated_at:%Y-%m-%d %H:%M}")
    return table
