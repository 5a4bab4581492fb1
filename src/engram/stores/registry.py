"""URL scheme -> backend class, imported only when a URL of that scheme is opened.

A backend plugs in with one line here and one module in ``engram.stores``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from engram.errors import ConfigError, MissingDependency
from engram.stores.base import Store


@dataclass(frozen=True)
class Backend:
    target: str  # "module:Class"
    extra: str | None  # the pip extra that installs its driver


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend("engram.stores.sqlite:SQLiteStore", None),
    "memory": Backend("engram.stores.memory:MemoryStore", None),
    "postgresql": Backend("engram.stores.postgres:PostgresStore", "postgres"),
    "postgres": Backend("engram.stores.postgres:PostgresStore", "postgres"),
    "redis": Backend("engram.stores.redis_store:RedisStore", "redis"),
    "rediss": Backend("engram.stores.redis_store:RedisStore", "redis"),
    "json": Backend("engram.stores.jsonfiles:JsonStore", None),
}


def scheme_of(url: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"database URL {url!r} has no scheme: use one of "
            + ", ".join(f"{s}://" for s in sorted(BACKENDS))
        )
    return urlsplit(url).scheme.lower()


def store_class(url: str) -> type[Store]:
    """The backend class for ``url``, importing its module now.

    Raises:
        ConfigError: the scheme is unknown.
        MissingDependency: the backend's driver is not installed.
    """
    scheme = scheme_of(url)
    backend = BACKENDS.get(scheme)
    if backend is None:
        raise ConfigError(
            f"unknown database URL scheme {scheme!r}: use one of "
            + ", ".join(f"{s}://" for s in sorted(BACKENDS))
        )
    module_name, _, class_name = backend.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'engram[{backend.extra}]'" if backend.extra else "reinstall engram"
        raise MissingDependency(
            f"the {scheme}:// backend needs {exc.name or 'a driver'}: {hint}"
        ) from exc
    return getattr(module, class_name)
