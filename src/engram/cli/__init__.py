"""The ``engram`` command: a thin layer over ``Memory`` (parse, call, render).

Errors print one line to stderr and exit 2 for bad input, 1 for anything else.
Every read command takes ``--json`` and prints the field names of engram.models.

The root group below imports a command's module only when that command runs
(``engram --help`` imports none of them): one module per family of commands,
sharing ``_common`` (state, options) and ``_output`` (printing).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from engram.cli._common import _Context
from engram.cli._lazy import Lazy, LazyGroup
from engram.errors import EngramError

# name -> where the command lives, and the first paragraph of its help (listed by `engram --help`;
# tests/unit/test_cli_lazy.py checks that it matches the command's own help).
COMMANDS: dict[str, Lazy] = {
    # entries and search
    "store": Lazy("engram.cli.entries:store", "Store (upsert) CONTENT under KEY. Use - as CONTENT to read standard input."),
    "get": Lazy("engram.cli.entries:get", "Print the entry stored under KEY."),
    "delete": Lazy("engram.cli.entries:delete", "Delete the entry stored under KEY."),
    "delete-namespace": Lazy("engram.cli.entries:delete_namespace", "Delete every entry of NAMESPACE (asks first unless --yes)."),
    "list": Lazy("engram.cli.entries:list_", "List entries, newest updated first (or --order updated_asc)."),
    "namespaces": Lazy("engram.cli.entries:namespaces", "List namespaces that hold entries."),
    "search": Lazy(
        "engram.cli.search:search",
        'Search by words and meaning. Query language: words, "exact phrase", a OR b, a AND b, prefix*, '
        "-excluded, (groups).",
    ),
    # sessions, tasks, conversations, runs
    "session": Lazy("engram.cli.sessions:session", "Start, end and list agent sessions."),
    "task": Lazy("engram.cli.sessions:task", "Create, update and list agent tasks."),
    "chat": Lazy("engram.cli.chat:chat", "Add, show, search and delete the messages of a session."),
    "checkpoint": Lazy("engram.cli.chat:checkpoint", "Save, list, resume and delete paused agent runs (HITL checkpoints)."),
    "run": Lazy("engram.cli.runs:run", "Start, pause, resume and finish runs of agents inside sessions."),
    "blob": Lazy("engram.cli.blobs:blob", "Put, get, list and clean up blobs (files, images, large objects)."),
    # moving records
    "export": Lazy("engram.cli.transfer:export", "Write every record to FILE (versioned JSONL)."),
    "import": Lazy("engram.cli.transfer:import_", "Load records from an export FILE; safe to run twice."),
    "copy": Lazy("engram.cli.transfer:copy_", "Copy every record from SRC_URL into DST_URL (any two backends); safe to run again."),
    # maintenance
    "stats": Lazy("engram.cli.maintenance:stats", "Show what the store holds."),
    "reindex": Lazy("engram.cli.maintenance:reindex", "Embed entries and chat messages that lack a vector with the configured embedder."),
    "vacuum": Lazy("engram.cli.maintenance:vacuum", "Reclaim space and optimize the indexes."),
    "prune": Lazy("engram.cli.maintenance:prune", "Remove expired entries, and old messages, sessions and checkpoints when asked."),
    "cache": Lazy("engram.cli.cache:cache", "Show and clear the cache (storage.cache: in-memory or Redis)."),
    # the server and its control plane
    "serve": Lazy("engram.cli.admin:serve", "Run the REST API and MCP server (needs pip install 'engram[server]')."),
    "mcp": Lazy("engram.cli.admin:mcp", "Serve the MCP tools over stdio (for agents that start engram as a subprocess)."),
    "project": Lazy("engram.cli.admin:project", "Create and list projects (each has its own store, keys and variables)."),
    "key": Lazy("engram.cli.admin:key", "Create, list and revoke API keys."),
    "user": Lazy("engram.cli.admin:user", "Create, list and delete users."),
    "secrets": Lazy("engram.cli.admin:secrets", "Manage the key that encrypts variables."),
    "transactions": Lazy("engram.cli.admin:transactions", "Read and prune the transaction log of writes through the server."),
}


class EngramGroup(LazyGroup):
    """Turns engram errors into one line on stderr and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EngramError as exc:
            from engram.cli._output import err

            err.print(f"[red]error:[/red] {exc.message}", markup=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            from engram.cli._output import err

            err.print("interrupted")
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the CLI promises no tracebacks
            from engram.cli._output import err

            err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", markup=True)
            sys.exit(1)


@click.group(cls=EngramGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", metavar="URL", help="Database URL (default: ENGRAM_DATABASE_URL, the config file, or the user data directory).")
@click.option("--config", metavar="FILE", type=click.Path(dir_okay=False), help="YAML config file (default: ENGRAM_CONFIG).")
@click.version_option(package_name="engram")
@click.pass_context
def cli(ctx: click.Context, db: str | None, config: str | None) -> None:
    """engram: persistent memory for AI agents.

    Store, search and organise memories, sessions and tasks from the shell.
    Settings come from options, then ENGRAM_* variables, then the config file.
    """
    state = _Context(db, config)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    """The ``engram`` console script."""
    cli(prog_name="engram")
