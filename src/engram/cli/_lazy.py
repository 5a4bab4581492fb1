"""A click group whose subcommands are imported on first use (click's documented LazyGroup).

Each subcommand is named in a mapping ``name -> ("module:attribute", short help)``; the
short help is kept beside the target so ``--help`` lists every command without
importing any of them.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import click


class Lazy(NamedTuple):
    target: str  # "module:attribute" of a click command or group
    help: str  # the first paragraph of the command's help, as ``--help`` lists it


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is run."""

    def __init__(self, *args: object, lazy_commands: dict[str, Lazy] | None = None, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands: dict[str, Lazy] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(self.load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def load(self, cmd_name: str) -> click.Command:
        """Import the command registered as ``cmd_name``."""
        module_name, _, attribute = self.lazy_commands[cmd_name].target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name].target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing imports every command for its short help: list from the mapping
        # instead, shortened by click itself (a stand-in command), so the lines are identical.
        stand_ins = {name: click.Command(name, help=lazy.help) for name, lazy in self.lazy_commands.items()}
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or stand_ins[name]
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])
