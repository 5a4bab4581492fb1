"""``engram export|import|copy``: every record out to a file, back in, or across backends."""

from __future__ import annotations

from pathlib import Path

import click

from engram.cli._common import _memory, json_option, state
from engram.cli._output import emit_json, err, out, progress_bar
from engram.stores._files import location


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def export(file: str, as_json: bool) -> None:
    """Write every record to FILE (versioned JSONL)."""
    from engram.copy import count_records

    memory = _memory()
    # Every kind the export writes (conversation records too), so the bar ends at its total.
    with progress_bar("exporting", sum(count_records(memory).values())) as advance:
        counts = memory.export(file, progress=advance)
    _print_counts("exported", counts, as_json)


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def import_(file: str, as_json: bool) -> None:
    """Load records from an export FILE; safe to run twice."""
    from engram.copy import count_records as stored
    from engram.transfer import count_records

    memory = _memory()
    before = sum(stored(memory).values())
    with progress_bar("importing", count_records(Path(file))) as advance:
        counts = memory.import_(file, progress=advance)
    # Import upserts: a record already there (same id or key) is updated or left as it is, not added.
    new = max(sum(stored(memory).values()) - before, 0)
    old = max(sum(counts.values()) - new, 0)
    _print_counts("imported", counts, as_json, note=f": {new} new, {old} already there (updated or unchanged)")


@click.command("copy")
@click.argument("src_url", metavar="SRC_URL")
@click.argument("dst_url", metavar="DST_URL")
@click.option("--batch-size", default=1000, show_default=True, help="Records per batch.")
@json_option
def copy_(src_url: str, dst_url: str, batch_size: int, as_json: bool) -> None:
    """Copy every record from SRC_URL into DST_URL (any two backends); safe to run again."""
    from engram.config import load_settings
    from engram.copy import copy_store, count_records
    from engram.memory import Memory

    settings = load_settings(state().config)
    with Memory(src_url, settings=settings) as src, Memory(dst_url, settings=settings) as dst:
        shown = err if as_json else out  # keep stdout pure JSON under --json
        shown.print(f"from: {location(src_url)}\nto:   {location(dst_url)}", markup=False)
        with progress_bar("copying", sum(count_records(src).values())) as advance:
            counts = copy_store(src, dst, batch_size=batch_size, progress=advance)
    _print_counts("copied and verified", counts, as_json)


def _print_counts(verb: str, counts: dict[str, int], as_json: bool, note: str = "") -> None:
    if as_json:
        emit_json(counts)
    else:
        plural = {"entry": "entries", "summary": "summaries"}
        listed = ", ".join(f"{n} {kind if n == 1 else plural.get(kind, kind + 's')}" for kind, n in counts.items())
        out.print(f"{verb} {listed}{note}", markup=False)
