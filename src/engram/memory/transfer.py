"""The transfer part of the facade: export every record to a versioned JSONL file, and import one.

The format and the record kinds live in :mod:`engram.transfer`; this part
only binds them to the facade they read from and write through.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engram.memory.facade import Memory

Progress = Callable[[int], None]


class Transfer:
    """Export and import for ``memory`` (the whole facade: an import embeds and stores through it)."""

    def __init__(self, memory: "Memory") -> None:
        self.memory = memory

    def export(self, path: str | Path, *, progress: Progress | None = None) -> dict[str, int]:
        """Write every record to a versioned JSONL file; returns counts per kind."""
        # Imported on first use: most programs never export.
        from engram.transfer import export_jsonl

        return export_jsonl(self.memory, Path(path), progress=progress)

    def import_(self, path: str | Path, *, progress: Progress | None = None) -> dict[str, int]:
        """Load a JSONL export; idempotent (re-importing changes nothing). Returns counts per kind."""
        from engram.transfer import import_jsonl

        return import_jsonl(self.memory, Path(path), progress=progress)
