"""URL scheme -> backend class, imported only when a URL of that scheme is opened.

A built-in backend plugs in with one line in ``BACKENDS`` and its module in
``engram.stores``. Other packages add schemes without touching engram, as fsspec's
``register_implementation`` does: at runtime with ``register_backend``, or by
declaring an entry point in the ``engram.backends`` group (name: the scheme,
value: ``"module:Class"``), read the first time a URL names a scheme not known yet.

A scheme may also name the class of its server control plane (``control``, a
:class:`~engram.stores.control_base.ControlStore`): the server opens the control
store of its base URL's scheme through :func:`control_store_class`. A package
declares one in the ``engram.control_stores`` group (name: the scheme it serves).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from engram.errors import ConfigError, InvalidInput, MissingDependency
from engram.stores.base import Store
from engram.stores.control_base import ControlStore

ENTRY_POINT_GROUP = "engram.backends"
CONTROL_ENTRY_POINT_GROUP = "engram.control_stores"

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")  # RFC 3986, lower case: URL schemes are matched lower-cased
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


@dataclass(frozen=True)
class Backend:
    target: str | type[Store]  # "module:Class", or the class itself
    extra: str | None  # the pip extra that installs its driver
    package: str = "engram"  # the distribution to install (with ``extra``) when the import fails
    control: str | type[ControlStore] | None = None  # its server control-plane store, if it has one

    def load(self, scheme: str) -> type[Store]:
        """The backend class, importing its module now.

        Raises:
            MissingDependency: the module (or a driver it needs) is not installed.
        """
        return self._import(self.target, scheme)

    def load_control(self, scheme: str) -> type[ControlStore]:
        """The control-plane store class, importing its module now.

        Raises:
            ConfigError: this backend has none.
            MissingDependency: the module (or a driver it needs) is not installed.
        """
        if self.control is None:
            raise ConfigError(f"the {scheme}:// backend has no server control plane: the server cannot run on it")
        return self._import(self.control, scheme)

    def _import(self, target: str | type, scheme: str) -> type:
        if not isinstance(target, str):
            return target
        if not _TARGET.fullmatch(target):  # only a plug-in's entry point can get here so
            raise ConfigError(f"the {scheme}:// backend is declared as {target!r}: it must be 'module:Class'")
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            hint = f"pip install '{self.package}[{self.extra}]'" if self.extra else f"reinstall {self.package}"
            raise MissingDependency(
                f"the {scheme}:// backend needs {exc.name or 'a driver'}: {hint}"
            ) from exc
        return getattr(module, class_name)


BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(
        "engram.stores.sqlite:SQLiteStore", None, control="engram.stores.sqlite.control:SQLiteControlStore"
    ),
    "memory": Backend(
        "engram.stores.memory:MemoryStore", None, control="engram.stores.memory.control:MemoryControlStore"
    ),
    "postgresql": Backend(
        "engram.stores.postgres:PostgresStore", "postgres", control="engram.stores.postgres.control:PostgresControlStore"
    ),
    "postgres": Backend(
        "engram.stores.postgres:PostgresStore", "postgres", control="engram.stores.postgres.control:PostgresControlStore"
    ),
    "redis": Backend("engram.stores.redis:RedisStore", "redis"),
    "rediss": Backend("engram.stores.redis:RedisStore", "redis"),
    "json": Backend("engram.stores.jsonfiles:JsonStore", None),
}

_entry_points_read = False


def register_backend(
    scheme: str, target: str | type[Store], extra: str | None = None, *, package: str | None = None,
    control: str | type[ControlStore] | None = None, clobber: bool = False,
) -> None:
    """Open URLs of ``scheme`` with ``target``: a ``Store`` subclass, or ``"module:Class"``
    imported when such a URL is first opened.

    ``extra`` and ``package`` make the hint shown when that import fails
    (``pip install 'package[extra]'``); ``package`` defaults to the target's top-level module.
    ``control``, a ``ControlStore`` subclass or ``"module:Class"``, lets the server keep its
    control plane (users, keys, projects, variables, log) in this backend.

    Raises:
        InvalidInput: ``scheme`` is not a URL scheme, or ``target`` (``control``) is neither a
            ``Store`` (``ControlStore``) subclass nor ``"module:Class"``.
        ConfigError: ``scheme`` is registered to another target and ``clobber`` is false.
    """
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
        raise InvalidInput(
            f"backend scheme {scheme!r} is not a URL scheme: use lower-case letters, digits, '+', '-' or '.', "
            "starting with a letter (e.g. 'mydb')"
        )
    if isinstance(target, str):
        if not _TARGET.fullmatch(target):
            raise InvalidInput(f"backend target {target!r} must be 'module:Class', e.g. 'mypackage.store:MyStore'")
        top = target.partition(".")[0].partition(":")[0]
    elif isinstance(target, type) and issubclass(target, Store):
        top = target.__module__.partition(".")[0]
    else:
        raise InvalidInput(f"backend target {target!r} must be a subclass of engram.stores.base.Store or 'module:Class'")
    if control is not None and not (
        (isinstance(control, str) and _TARGET.fullmatch(control))
        or (isinstance(control, type) and issubclass(control, ControlStore))
    ):
        raise InvalidInput(
            f"control store {control!r} must be a subclass of engram.stores.control_base.ControlStore or 'module:Class'"
        )
    backend = Backend(target, extra, package or top, control)
    existing = BACKENDS.get(scheme)
    if existing is not None and (existing.target, existing.control) != (target, control) and not clobber:
        raise ConfigError(
            f"the {scheme}:// scheme is already registered to {_name(existing.target)}: "
            "pass clobber=True to replace it"
        )
    BACKENDS[scheme] = backend


def _name(target: str | type) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def _read_entry_points() -> None:
    """Register the schemes other installed packages declare, once; schemes already known win."""
    global _entry_points_read
    if _entry_points_read:
        return
    _entry_points_read = True
    import importlib.metadata  # here, not above: `import engram` need not scan the installed packages

    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        scheme = point.name.lower()
        if scheme in BACKENDS:
            continue
        target = f"{point.module}:{point.attr}" if point.attr else point.value
        package = point.dist.name if point.dist is not None else point.module.partition(".")[0]
        BACKENDS[scheme] = Backend(target, point.extras[0] if point.extras else None, package)
    for point in importlib.metadata.entry_points(group=CONTROL_ENTRY_POINT_GROUP):
        backend = BACKENDS.get(point.name.lower())
        if backend is None or backend.control is not None:
            continue  # a control store joins a scheme that has none; it never replaces one
        control = f"{point.module}:{point.attr}" if point.attr else point.value
        BACKENDS[point.name.lower()] = dataclasses.replace(backend, control=control)


def known_schemes() -> list[str]:
    """Every scheme that can be opened, sorted, those of installed plug-ins included."""
    _read_entry_points()
    return sorted(BACKENDS)


def scheme_of(url: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"database URL {url!r} has no scheme: use one of "
            + ", ".join(f"{s}://" for s in known_schemes())
        )
    return urlsplit(url).scheme.lower()


def _backend(url: str) -> tuple[str, Backend]:
    scheme = scheme_of(url)
    backend = BACKENDS.get(scheme)
    if backend is None:
        _read_entry_points()
        backend = BACKENDS.get(scheme)
    if backend is None:
        raise ConfigError(
            f"unknown database URL scheme {scheme!r}: use one of "
            + ", ".join(f"{s}://" for s in known_schemes())
        )
    return scheme, backend


def store_class(url: str) -> type[Store]:
    """The backend class for ``url``, importing its module now.

    Raises:
        ConfigError: the scheme is unknown.
        MissingDependency: the backend's driver is not installed.
    """
    scheme, backend = _backend(url)
    return backend.load(scheme)


def control_store_class(url: str) -> type[ControlStore]:
    """The control-plane store class of a server whose base store is ``url``.

    Raises:
        ConfigError: the scheme is unknown, or its backend has no control-plane store.
        MissingDependency: the backend's driver is not installed.
    """
    scheme, backend = _backend(url)
    return backend.load_control(scheme)
