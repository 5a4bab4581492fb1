"""The ``engram`` root group loads a command's module only when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from engram.cli import COMMANDS, cli
from engram.cli._lazy import LazyGroup

EVERY_COMMAND = [
    "blob", "cache", "chat", "checkpoint", "copy", "delete", "delete-namespace", "export", "get", "import", "key", "list", "mcp",
    "namespaces", "project", "prune", "reindex", "run", "search", "secrets", "serve", "session", "stats", "store",
    "task", "transactions", "user", "vacuum",
]


def _loaded_after(args: list[str]) -> list[str]:
    """The engram.cli and engram.server modules a fresh interpreter holds after ``engram ARGS``."""
    script = (
        "import json, sys\n"
        "from engram.cli import cli\n"
        f"try:\n    cli({args!r}, prog_name='engram')\n"
        "except SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('engram.cli', 'engram.server')))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout.splitlines()[-1])


def test_help_lists_every_command_and_imports_none():
    assert sorted(COMMANDS) == EVERY_COMMAND
    assert _loaded_after(["--help"]) == ["engram.cli", "engram.cli._common", "engram.cli._lazy"]


def test_a_command_imports_only_its_own_family():
    loaded = _loaded_after(["chat", "--help"])
    assert "engram.cli.chat" in loaded
    assert not {"engram.cli.admin", "engram.cli.entries", "engram.cli.transfer"} & set(loaded)
    assert not [m for m in loaded if m.startswith("engram.server")]  # the server only for its own commands
    assert "engram.server.tenancy" in _loaded_after(["key", "--help"])


@pytest.mark.parametrize("width", [40, 80, 120, 200])
def test_listed_help_is_the_commands_own(width):
    # The lines `engram --help` prints from the mapping equal those of the loaded commands.
    def listing(group: click.Group, format_commands) -> str:
        ctx = click.Context(group, info_name="engram", terminal_width=width)
        formatter = ctx.make_formatter()
        format_commands(group, ctx, formatter)
        return formatter.getvalue()

    fresh = LazyGroup("engram", lazy_commands=COMMANDS)
    lazy = listing(fresh, LazyGroup.format_commands)
    assert not fresh.commands  # listed without importing any
    loaded = listing(LazyGroup("engram", lazy_commands=COMMANDS), click.Group.format_commands)  # imports each
    assert lazy == loaded
    assert all(f"  {name} " in lazy for name in EVERY_COMMAND)


def test_every_target_is_a_click_command_named_as_listed():
    for name, lazy in COMMANDS.items():
        command = cli.load(name)
        assert isinstance(command, click.Command), lazy.target
        assert command.name == name, lazy.target


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["nosuch"])
    assert result.exit_code == 2
    assert "No such command 'nosuch'" in result.output


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "engram.cli", "--help"], capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.startswith("Usage: engram [OPTIONS] COMMAND [ARGS]...")
    assert all(f"  {name} " in done.stdout for name in EVERY_COMMAND)
