"""What every command module shares: the per-invocation state (settings, the opened
``Memory``), the common options, option parsing and the ``--yes`` confirmation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from engram.errors import InvalidInput
from engram.validation import json_text

if TYPE_CHECKING:
    from engram.config import Settings
    from engram.memory import Memory


class _Context:
    """The root group's state: ``--db`` and ``--config``, and the store opened on first use."""

    def __init__(self, db: str | None, config: str | None):
        self.db = db
        self.config = config
        self._memory: Memory | None = None
        self.check_embedder = True  # reindex opens a store whose vectors may come from another model

    @property
    def memory(self) -> Memory:
        if self._memory is None:
            from engram.memory import Memory

            self._memory = Memory(settings=self.settings(), check_embedder=self.check_embedder)
        return self._memory

    def settings(self, **overrides: Any) -> Settings:
        """Settings from ``--config`` and ``--db`` (``overrides`` win over both)."""
        from engram.config import load_settings

        return load_settings(self.config, database_url=self.db, **overrides)

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()


def state() -> _Context:
    """The root group's state of the command being run."""
    return click.get_current_context().find_object(_Context)


def _memory() -> Memory:
    return state().memory


def parse_json_option(name: str, text: str | None) -> Any:
    if text is None:
        return None
    return json_text(name, text)


def parse_datetime_option(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be an ISO date or time such as 2026-01-31 or 2026-01-31T12:00:00Z") from exc
    return dt if dt.tzinfo else dt.astimezone()


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
namespace_option = click.option("--namespace", "-n", default="default", show_default=True, help="Namespace of the entry.")


def search_mode_options(auto: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--mode`` and ``--threshold`` of a search command; ``auto`` says when auto means hybrid."""
    mode = click.option(
        "--mode", type=click.Choice(["auto", "fts", "vector", "hybrid"]), default="auto", show_default=True,
        help=f"fts: words; vector: meaning; hybrid: both fused; auto: hybrid where {auto}, else fts.",
    )
    threshold = click.option(
        "--threshold", type=float, metavar="X", help="Drop vector matches with cosine similarity below X (0..1)."
    )
    return lambda f: mode(threshold(f))


def yes_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--yes`` for a command that deletes: its help says what it skips."""
    return click.option(
        "--yes", is_flag=True,
        help=f"Delete {what} without asking. Without it, the command asks for confirmation on the terminal "
        "and fails (does not wait) when standard input is not a terminal.",
    )


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` unless ``--yes`` was given; with no terminal to ask on, fail at once.

    Raises:
        InvalidInput: no ``--yes`` and standard input is not a terminal (a
            script or a pipe would otherwise hang on, or be read as, the answer).
    """
    if yes:
        return
    if sys.stdin is None or not sys.stdin.isatty():
        raise InvalidInput(f"{question} needs a confirmation and standard input is not a terminal: add --yes")
    click.confirm(f"{question[0].upper()}{question[1:]}?", abort=True)
