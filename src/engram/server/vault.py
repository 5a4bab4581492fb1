"""Variables encrypted at rest with Fernet; rotation with MultiFernet.

The key comes from the ``secret_key`` setting (``ENGRAM_SECRET_KEY``: one or
more Fernet keys, comma-separated, the first encrypts and all decrypt) or from a
key file with mode 0600 beside the database, generated on first use. A token
that no key decrypts raises :class:`~engram.errors.SecretKeyError`: there is no
plaintext fallback, and no message ever holds a value or a key.
"""

from __future__ import annotations

import os
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


class Vault:
    """Encrypts and decrypts variable values; ``keys[0]`` encrypts, every key decrypts."""

    def __init__(self, keys: list[bytes], *, key_file: Path | None = None, from_settings: bool = False):
        self.keys = keys
        self.key_file = key_file
        self.from_settings = from_settings
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def load(cls, secret_key: str | None, key_file: Path | None) -> "Vault":
        """From the setting, else the key file (created on first use), else a key for this process only."""
        if secret_key:
            return cls(parse_keys(secret_key, "setting secret_key (ENGRAM_SECRET_KEY)"), from_settings=True)
        if key_file is None:
            return cls([Fernet.generate_key()])
        if not key_file.exists():
            write_key_file(key_file, [Fernet.generate_key()])
        try:
            text = key_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the secret key file {key_file}: {exc}") from None
        return cls(parse_keys(text, f"secret key file {key_file}"), key_file=key_file)

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, name: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                f"variable {name!r} cannot be decrypted with the configured secret key "
                "(ENGRAM_SECRET_KEY or the key file); set the key it was encrypted with"
            ) from None

    def rotated(self) -> tuple["Vault", bytes]:
        """A vault whose new first key encrypts, keeping the old keys to decrypt; and that new key."""
        new = Fernet.generate_key()
        return Vault([new, *self.keys], key_file=self.key_file, from_settings=self.from_settings), new

    def rotate_token(self, token: str, name: str) -> str:
        """Re-encrypt one token under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretKeyError(
                f"variable {name!r} cannot be decrypted with the configured secret key; nothing was rotated"
            ) from None
