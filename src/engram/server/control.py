"""The control plane: users, projects, API keys, variables and the transaction log.

Business rules live here; persistence is a ``ControlStore`` (the contract in
``engram.stores.control_base``) that the backend registry picks by the server's
URL scheme. The REST routes, the MCP server and the CLI all call this one class.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from engram._time import from_iso, to_iso, utcnow
from engram.errors import AuthError, Conflict, InvalidInput, NotFound, PermissionDenied
from engram.server import keys as api_keys
from engram.server.models import (
    IDENT_PATTERN,
    MAX_VARIABLE_BYTES,
    ROLES,
    ApiKey,
    CreatedKey,
    Principal,
    Project,
    Transaction,
    User,
    Variable,
    VariableInfo,
)
from engram.stores.control_base import ControlStore, TransactionQuery

if TYPE_CHECKING:  # the vault imports cryptography, which only variables need
    from engram.server.vault import Rotation

DEFAULT_PROJECT = "default"
_IDENT = re.compile(IDENT_PATTERN)
# How often last_used_at is written for one key: a write per request would double the cost of reads.
_TOUCH_EVERY = timedelta(minutes=1)


def ident(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise InvalidInput(
            f"{field} must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit; got {value!r}"
        )
    return value


def _key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        prefix=row["prefix"],
        project=row["project"],
        role=row["role"],
        user=row["user"],
        name=row["name"],
        created_at=from_iso(row["created_at"]),
        expires_at=from_iso(row["expires_at"]),
        revoked_at=from_iso(row["revoked_at"]),
        last_used_at=from_iso(row["last_used_at"]),
    )


class ControlPlane:
    """Users, projects, keys, variables and the transaction log over one :class:`ControlStore`.

    ``vault`` is a callable returning the :class:`~engram.server.vault.Vault`,
    so commands that never touch variables never need the secret key.
    """

    def __init__(self, store: ControlStore, vault: Callable[[], Any] | None = None):
        self.store = store
        self._vault_factory = vault
        self._vault: Any = None
        self._touched: dict[str, datetime] = {}

    @property
    def vault(self) -> Any:
        if self._vault is None:
            if self._vault_factory is None:
                raise InvalidInput("this control plane has no secret key configured")
            self._vault = self._vault_factory()
        return self._vault

    def close(self) -> None:
        self.store.close()

    # -- projects ----------------------------------------------------------------------
    def create_project(self, name: str) -> Project:
        """Create a project; each has its own store, so nothing is shared between projects.

        Raises:
            Conflict: a project of that name exists.
        """
        ident("project name", name)
        if self.store.project(name=name) is not None:
            raise Conflict(f"project {name!r} already exists")
        row = {"id": uuid.uuid4().hex, "name": name, "created_at": to_iso(utcnow())}
        self.store.insert_project(row)
        return Project(id=row["id"], name=name, created_at=from_iso(row["created_at"]))

    def project(self, name: str) -> Project:
        row = self.store.project(name=ident("project name", name))
        if row is None:
            raise NotFound(f"project {name!r} does not exist")
        return Project(id=row["id"], name=row["name"], created_at=from_iso(row["created_at"]))

    def project_by_id(self, project_id: str) -> Project:
        row = self.store.project(id=project_id)
        if row is None:
            raise NotFound(f"project {project_id} does not exist")
        return Project(id=row["id"], name=row["name"], created_at=from_iso(row["created_at"]))

    def projects(self) -> list[Project]:
        return [Project(id=r["id"], name=r["name"], created_at=from_iso(r["created_at"])) for r in self.store.projects()]

    def ensure_default_project(self) -> Project:
        try:
            return self.project(DEFAULT_PROJECT)
        except NotFound:
            try:
                return self.create_project(DEFAULT_PROJECT)
            except Conflict:  # another process created it meanwhile
                return self.project(DEFAULT_PROJECT)

    # -- users ---------------------------------------------------------------------------
    def create_user(self, name: str) -> User:
        ident("user name", name)
        if self.store.user_by_name(name) is not None:
            raise Conflict(f"user {name!r} already exists")
        row = {"id": uuid.uuid4().hex, "name": name, "created_at": to_iso(utcnow())}
        self.store.insert_user(row)
        return User(id=row["id"], name=name, created_at=from_iso(row["created_at"]))

    def users(self) -> list[User]:
        return [User(id=r["id"], name=r["name"], created_at=from_iso(r["created_at"])) for r in self.store.users()]

    def delete_user(self, name: str) -> int:
        """Delete a user and revoke their keys; returns how many keys were revoked."""
        row = self.store.user_by_name(ident("user name", name))
        if row is None:
            raise NotFound(f"user {name!r} does not exist")
        return self.store.delete_user(row["id"], revoked_at=to_iso(utcnow()))

    # -- keys ------------------------------------------------------------------------------
    def create_key(
        self,
        project: str,
        role: str = "member",
        *,
        user: str | None = None,
        name: str | None = None,
        expires_in_days: float | None = None,
        plaintext: str | None = None,
    ) -> CreatedKey:
        """Issue an API key for ``project``; the returned ``key`` is its only appearance.

        Args:
            plaintext: use this key instead of a random one (``ENGRAM_ADMIN_KEY``).
        """
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        if role == "server_admin" and project != DEFAULT_PROJECT:
            raise InvalidInput(
                f"a server_admin key belongs to the {DEFAULT_PROJECT!r} project; leave project out or name it"
            )
        p = self.project(project)
        user_id = None
        if user is not None:
            row = self.store.user_by_name(ident("user name", user))
            if row is None:
                raise NotFound(f"user {user!r} does not exist")
            user_id = row["id"]
        if expires_in_days is not None and (
            isinstance(expires_in_days, bool) or not isinstance(expires_in_days, (int, float)) or not 0 < expires_in_days <= 36500
        ):
            raise InvalidInput(f"expires_in_days must be a number from 0 to 36500, got {expires_in_days!r}")
        if name is not None and (not isinstance(name, str) or len(name) > 128):
            raise InvalidInput("key name must be a string of at most 128 characters")
        if plaintext is not None and not api_keys.is_plausible(plaintext):
            raise InvalidInput("an admin key must be 20 to 512 printable ASCII characters without spaces")
        new = api_keys.generate() if plaintext is None else api_keys.from_plaintext(plaintext)
        now = utcnow()
        expires = None if expires_in_days is None else now + timedelta(days=expires_in_days)
        self.store.insert_key(
            {
                "id": new.id, "prefix": new.prefix, "hash": new.digest, "project_id": p.id, "role": role,
                "user_id": user_id, "name": name, "created_at": to_iso(now), "expires_at": to_iso(expires),
            }
        )
        listed = self.key(new.id)
        return CreatedKey(**listed.model_dump(), key=new.plaintext)

    def key(self, key_id: str) -> ApiKey:
        row = self.store.key(key_id)
        if row is None:
            raise NotFound(f"API key {key_id} does not exist")
        return _key(row)

    def keys(self, project: str | None = None, *, include_revoked: bool = False) -> list[ApiKey]:
        project_id = None if project is None else self.project(project).id
        return [_key(r) for r in self.store.keys(project_id=project_id, include_revoked=include_revoked)]

    def revoke_key(self, key: str, *, project: str | None = None) -> ApiKey:
        """Revoke a key by id or visible prefix; it stops working at once.

        Args:
            project: revoke only within this project (a project admin's reach): a key of
                another project is "not found", so its existence is not revealed.

        Raises:
            NotFound: no such key (in ``project``).
            PermissionDenied: ``project`` is given and the key is a server_admin key.
            Conflict: the key is already revoked.
        """
        key_id = key.rsplit("_", 1)[-1] if key.startswith(("engram_", "env_")) else key
        row = self.store.key(key_id)
        if row is None or (project is not None and row["project"] != project):
            raise NotFound(f"API key {key} does not exist")
        if project is not None and row["role"] == "server_admin":
            raise PermissionDenied(f"only the server administrator can revoke the server_admin key {row['prefix']}")
        if row["revoked_at"] is not None:
            raise Conflict(f"API key {row['prefix']} is already revoked")
        self.store.revoke_key(key_id, revoked_at=to_iso(utcnow()))
        return self.key(key_id)

    def authenticate(self, plaintext: str | None) -> Principal:
        """The principal of a presented key.

        Raises:
            AuthError: no key, or a malformed, unknown, expired or revoked one.
        """
        if not plaintext:
            raise AuthError("missing API key: send Authorization: Bearer <key> or X-API-Key: <key>")
        if not api_keys.is_plausible(plaintext):
            raise AuthError("malformed API key")
        row = self.store.key_by_hash(api_keys.digest(plaintext))
        if row is None:
            raise AuthError("invalid API key")
        return self._principal(row)

    def principal(self, key_id: str) -> Principal:
        """The principal of a key known by id (a dashboard sign-in), checked as :meth:`authenticate` checks.

        Raises:
            AuthError: the key was deleted, revoked or has expired.
        """
        row = self.store.key(key_id)
        if row is None:
            raise AuthError("this API key no longer exists")
        return self._principal(row)

    def _principal(self, row: dict[str, Any]) -> Principal:
        """The one check of a stored key: not revoked, not expired; notes its use (at most once a minute)."""
        now = utcnow()
        if row["revoked_at"] is not None:
            raise AuthError(f"API key {row['prefix']} has been revoked")
        if row["expires_at"] is not None and from_iso(row["expires_at"]) <= now:
            raise AuthError(f"API key {row['prefix']} has expired")
        last = self._touched.get(row["id"])
        if last is None or now - last >= _TOUCH_EVERY:
            self._touched[row["id"]] = now
            self.store.touch_key(row["id"], used_at=to_iso(now))
        return Principal(
            key_id=row["id"], key_prefix=row["prefix"], project_id=row["project_id"], project=row["project"],
            role=row["role"], user=row["user"],
        )

    def bootstrap(self, admin_key: str | None = None) -> CreatedKey | None:
        """First start: the default project and the server administrator's key.

        Returns the new server_admin key (to print once) when one was generated;
        an ``admin_key`` given by the operator is registered and not returned.
        """
        self.ensure_default_project()
        if admin_key:
            if self.store.key_by_hash(api_keys.digest(admin_key)) is None:
                try:
                    self.create_key(DEFAULT_PROJECT, "server_admin", name="ENGRAM_ADMIN_KEY", plaintext=admin_key)
                except Conflict:  # another server registered it meanwhile
                    pass
            return None
        if self.store.count_keys("server_admin") > 0:
            return None
        # Servers starting together on one database all get here; the store lets one insert.
        new = api_keys.generate()
        now = to_iso(utcnow())
        first = {
            "id": new.id, "prefix": new.prefix, "hash": new.digest, "project_id": self.project(DEFAULT_PROJECT).id,
            "role": "server_admin", "name": "first admin key", "created_at": now,
        }
        if not self.store.insert_first_key(first):
            return None
        return CreatedKey(**self.key(new.id).model_dump(), key=new.plaintext)

    # -- variables ---------------------------------------------------------------------------
    def set_variable(self, project_id: str, name: str, value: str) -> VariableInfo:
        ident("variable name", name)
        if not isinstance(value, str):
            raise InvalidInput(f"a variable value must be a string, not {type(value).__name__}")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInput("a variable value must be valid text (it has an unpaired surrogate)") from None
        if size > MAX_VARIABLE_BYTES:
            raise InvalidInput(f"a variable value is at most {MAX_VARIABLE_BYTES} bytes; this one is {size}")
        vault = self.vault
        row = self.store.put_variable(project_id, name, lambda: vault.encrypt(value), now=to_iso(utcnow()))
        return VariableInfo(name=row["name"], created_at=from_iso(row["created_at"]), updated_at=from_iso(row["updated_at"]))

    def variable(self, project_id: str, name: str) -> Variable:
        row = self.store.variable(project_id, ident("variable name", name))
        if row is None:
            raise NotFound(f"variable {name!r} does not exist")
        return Variable(
            name=row["name"], value=self.vault.decrypt(row["ciphertext"], row["name"]),
            created_at=from_iso(row["created_at"]), updated_at=from_iso(row["updated_at"]),
        )

    def variables(self, project_id: str) -> list[VariableInfo]:
        return [
            VariableInfo(name=r["name"], created_at=from_iso(r["created_at"]), updated_at=from_iso(r["updated_at"]))
            for r in self.store.variables(project_id)
        ]

    def delete_variable(self, project_id: str, name: str) -> None:
        if not self.store.delete_variable(project_id, ident("variable name", name)):
            raise NotFound(f"variable {name!r} does not exist")

    def rotate_secrets(self) -> Rotation:
        """Re-encrypt every variable of every project under a new key, in one transaction.

        Key file: the file holds new + old keys before any value changes and only
        the new key after the transaction commits, so a crash at any point loses
        nothing; running servers reread it. ``secret_key`` with several keys:
        re-encrypts under the first. ``secret_key`` with one key: changes nothing
        and returns a generated key to deploy first (servers hold the setting in
        their environment, so a key they lack would make every value unreadable).

        Returns:
            a :class:`~engram.server.vault.Rotation`.

        Raises:
            SecretKeyError: a variable cannot be decrypted; nothing was changed.
        """
        vault = self.vault
        with vault.rotation() as rotation:
            if rotation.source == "staged":
                return rotation
            count = self.store.replace_ciphertexts(lambda project_id, name, token: vault.rotate_token(token, name))
        return dataclasses.replace(rotation, rotated=count)

    # -- transaction log -----------------------------------------------------------------------
    def record(
        self,
        principal: Principal | None,
        operation: str,
        target: str | None,
        outcome: str,
        status: int,
        duration_ms: float,
    ) -> None:
        self.store.record_transaction(
            {
                "at": to_iso(utcnow()),
                "key_id": principal.key_id if principal else None,
                "key_prefix": principal.key_prefix if principal else None,
                "user_name": principal.user if principal else None,
                "project_id": principal.project_id if principal else None,
                "operation": operation,
                "target": None if target is None else target[:512],
                "outcome": outcome,
                "status": status,
                "duration_ms": round(duration_ms, 3),
            }
        )

    def transactions(
        self, query: TransactionQuery = TransactionQuery(), *, project: str | None = None
    ) -> list[Transaction]:
        """The log records ``query`` selects, newest first; ``project`` (a name, which must exist) narrows
        it to that project."""
        if project is not None:
            query = dataclasses.replace(query, project_id=self.project(project).id)
        rows = self.store.transactions(query)
        return [
            Transaction(
                id=r["id"], at=from_iso(r["at"]), key_id=r["key_id"], key_prefix=r["key_prefix"], user=r["user_name"],
                project=r["project"], operation=r["operation"], target=r["target"], outcome=r["outcome"],
                status=r["status"], duration_ms=r["duration_ms"],
            )
            for r in rows
        ]

    def prune_transactions(self, older_than_days: float) -> int:
        """Delete log records older than ``older_than_days``; returns how many."""
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, (int, float)) or not 0 <= older_than_days <= 36500:
            raise InvalidInput(f"older_than_days must be a number from 0 to 36500, got {older_than_days!r}")
        return self.store.prune_transactions(before=to_iso(utcnow() - timedelta(days=older_than_days)))
