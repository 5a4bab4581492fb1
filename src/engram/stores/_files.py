"""The files of file-backed stores: which directories may be created, and private modes.

A store URL that names a directory which does not exist is far more often a
typo than a wish, so it is an error; only engram's own default location (the
user data directory) and directories engram derives itself (``create=True``)
are made. What engram creates holds memories and keys: readable by the owner
only, whatever the umask.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from engram.config import default_data_dir
from engram.errors import ConfigError

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def ensure_directory(directory: Path, *, create: bool = False) -> None:
    """Check that ``directory`` exists; make it (mode 0700) only where engram owns the location.

    Args:
        create: the directory is engram's own (e.g. ``engram-projects`` beside a
            store); without it only the default data directory is created.

    Raises:
        ConfigError: the directory does not exist and may not be created, is
            not a directory, or cannot be created.
    """
    where = directory.absolute()
    if where.is_dir():
        return
    if where.exists():
        raise ConfigError(f"{where} is not a directory: name a directory in the URL")
    if not (create or _is_default(where)):
        raise ConfigError(
            f"directory {where} does not exist: create it (mkdir -p {where}) or name an existing directory in the URL"
        )
    try:
        where.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        os.chmod(where, PRIVATE_DIR)  # mkdir's mode passes through the umask
    except OSError as exc:
        raise ConfigError(f"cannot create the directory {where}: {exc.strerror or exc}") from exc


def _is_default(directory: Path) -> bool:
    return directory.resolve() == default_data_dir().resolve()


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (an existing file keeps its mode).

    SQLite gives its -wal and -shm files the mode of the main file, so a
    private main file keeps them private too.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot create {path.absolute()}: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, PRIVATE_FILE)  # os.open's mode passes through the umask
    finally:
        os.close(fd)


def location(url: str) -> str:
    """Where a store URL points, for people: the absolute path of a file or
    directory store, else the URL without its password."""
    scheme = url.split(":", 1)[0].lower()
    try:
        if scheme == "sqlite":
            from engram.stores.sqlite.store import parse_sqlite_url

            return str(parse_sqlite_url(url)[0].resolve())
        if scheme == "json":
            from engram.stores.jsonfiles.store import parse_json_url

            return str(parse_json_url(url).resolve())
    except ConfigError:
        pass  # a bad URL is reported when it is opened; show it as given
    return redact(url)


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for display: stats, errors, logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
