"""engram's server: REST API (FastAPI), API-key auth with projects, encrypted variables,
a transaction log, and the MCP server (stdio and streamable HTTP).

Install with ``pip install 'engram[server]'``. The control plane (``engram.server.control``)
needs only the core install, so the CLI can manage users, projects and keys without it;
:func:`create_app` imports FastAPI when called.
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """Build the FastAPI application; see :func:`engram.server.app.create_app`."""
    from engram.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
