"""Variables encrypted at rest with Fernet; rotation with MultiFernet.

The key comes from the ``secret_key`` setting (``ENGRAM_SECRET_KEY``: one or
more Fernet keys, comma-separated, the first encrypts and all decrypt) or from a
key file with mode 0600 beside the database, generated on first use. A token
that no key decrypts raises :class:`~engram.errors.SecretKeyError`: there is no
plaintext fallback, and no message ever holds a value or a key.

Rotation with the key file never loses a value, whatever process crashes when:
the file always holds every key some stored ciphertext needs. Under a lock
file, :meth:`Vault.rotation` writes the new key before the old ones, the caller
re-encrypts every value in one database transaction, and only after it commits
is the file cut down to the new key. Other processes (a running server) reread
the file before they encrypt and when a value does not decrypt, so they follow.
A key from the setting lives in each server's environment and cannot follow:
rotation then never invents a key the servers do not hold (see ``rotation``).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engram.errors import ConfigError, MissingDependency, SecretKeyError

try:
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet
except ImportError as exc:  # pragma: no cover - the server extra installs it
    raise MissingDependency("encrypted variables need cryptography: pip install 'engram[server]'") from exc


def parse_keys(text: str, source: str) -> list[bytes]:
    keys = [k.strip().encode("ascii", "replace") for k in text.replace("\n", ",").split(",") if k.strip()]
    if not keys:
        raise ConfigError(f"{source} holds no key")
    for i, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # Never echo the key: say which one and what it should look like.
            raise ConfigError(
                f"{source}: key {i + 1} is not a Fernet key (32 url-safe base64-encoded bytes, "
                "e.g. from `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from None
    return keys


def read_key_file(path: Path) -> list[bytes]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the secret key file {path}: {exc}") from None
    return parse_keys(text, f"secret key file {path}")


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Write keys atomically with mode 0600 (the file is created with that mode, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(keys) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class Rotation:
    """What :meth:`ControlPlane.rotate_secrets` did.

    ``source``: ``"file"`` (the key file now holds only the new key), ``"setting"``
    (re-encrypted under the first key of ``ENGRAM_SECRET_KEY``), ``"staged"`` (the
    setting holds one key: ``new_key`` was generated for the operator to deploy,
    nothing was re-encrypted) or ``"memory"`` (this process only).
    """

    rotated: int
    source: str
    new_key: bytes | None = None


class Vault:
    """Encrypts and decrypts variable values; ``keys[0]`` encrypts, every key decrypts."""

    def __init__(self, keys: list[bytes], *, key_file: Path | None = None, from_settings: bool = False):
        self.key_file = key_file
        self.from_settings = from_settings
        self._use(keys)

    def _use(self, keys: list[bytes]) -> None:
        # One assignment, so a request on another thread sees the old ring or the new one, never half.
        self._ring = (list(keys), MultiFernet([Fernet(k) for k in keys]))

    @property
    def keys(self) -> list[bytes]:
        return self._ring[0]

    @classmethod
    def load(cls, secret_key: str | None, key_file: Path | None) -> "Vault":
        """From the setting, else the key file (created on first use), else a key for this process only."""
        if secret_key:
            return cls(parse_keys(secret_key, "setting secret_key (ENGRAM_SECRET_KEY)"), from_settings=True)
        if key_file is None:
            return cls([Fernet.generate_key()])
        if not key_file.exists():
            write_key_file(key_file, [Fernet.generate_key()])
        return cls(read_key_file(key_file), key_file=key_file)

    def reload(self) -> None:
        """Reread the key file, which another process may have rotated (a setting cannot change while running)."""
        if self.key_file is None:
            return
        if not self.key_file.exists():
            # Deleted under us: put back the keys the values written so far need.
            write_key_file(self.key_file, self.keys)
            return
        self._use(read_key_file(self.key_file))

    def encrypt(self, value: str) -> str:
        """Encrypt under the current first key: reread first, so a value is never sealed with a retired key."""
        self.reload()
        return self._ring[1].encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, name: str) -> str:
        """Decrypt; a token no key opens rereads the key file once (a rotation elsewhere) before it is an error."""
        try:
            return self._decrypt(token)
        except (InvalidToken, UnicodeError):
            pass
        if self.key_file is not None:
            self.reload()
            try:
                return self._decrypt(token)
            except (InvalidToken, UnicodeError):
                pass
        raise SecretKeyError(
            f"variable {name!r} cannot be decrypted with the configured secret key "
            "(ENGRAM_SECRET_KEY or the key file); set the key it was encrypted with"
        ) from None

    def _decrypt(self, token: str) -> str:
        return self._ring[1].decrypt(token.encode("ascii")).decode("utf-8")

    @contextmanager
    def rotation(self) -> Iterator[Rotation]:
        """Make a new first key, let the caller re-encrypt every value (:meth:`rotate_token`), then retire.

        Key file: under an exclusive lock (one rotation at a time), the file is
        rewritten as new + every key it holds; after the block the file holds
        only the new key. If the block raises, the file keeps new + old, which
        still opens every value. Setting with several keys: the first one is the
        new key (the operator deployed it), nothing is written. Setting with one
        key: yields a ``staged`` rotation with a generated key and the caller must
        change nothing (servers started with the setting could not read it).
        """
        if self.from_settings:
            if len(self.keys) == 1:
                yield Rotation(0, "staged", Fernet.generate_key())
            else:
                yield Rotation(0, "setting")
            return
        new = Fernet.generate_key()
        if self.key_file is None:
            old = self.keys
            self._use([new, *old])
            yield Rotation(0, "memory")
            self._use([new])
            return
        lock_path = self.key_file.with_name(self.key_file.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # The file, not this vault's copy: another rotation may have run since it was loaded.
            ring = [new, *(read_key_file(self.key_file) if self.key_file.exists() else self.keys)]
            write_key_file(self.key_file, ring)
            self._use(ring)
            yield Rotation(0, "file")
            write_key_file(self.key_file, [new])  # every value is under the new key now
            self._use([new])
        finally:
            os.close(fd)  # closing releases the lock

    def rotate_token(self, token: str, name: str) -> str:
        """Re-encrypt one token under the first key."""
        try:
            return self._ring[1].rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError(
                f"variable {name!r} cannot be decrypted with the configured secret key; nothing was rotated"
            ) from None
