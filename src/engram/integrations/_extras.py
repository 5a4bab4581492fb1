"""Import a framework an integration needs, or say which extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(extra: str, *modules: str) -> list[ModuleType]:
    """Import ``modules``; a missing one raises ImportError naming ``engram[extra]``.

    Raises:
        ImportError: ``pip install 'engram[<extra>]'`` is what to run.
    """
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            raise ImportError(
                f"engram.integrations needs {name.split('.')[0]} for this: pip install 'engram[{extra}]' "
                f"({exc})"
            ) from exc
    return loaded
