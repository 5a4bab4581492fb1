"""The control-plane store contract: users, projects, API keys, variables, transaction log.

Rows in, rows out: plain dicts with the fields named below, ISO-8601 strings for
times. The business rules (names, roles, expiry, encryption) live in
``engram.server.control.ControlPlane``, which calls only these methods; a backend
stores and finds rows. Secrets never reach a control store in clear: variables
arrive encrypted (``seal`` / ``reseal`` run inside the store's write) and API
keys arrive hashed.

A backend offers one by naming its class as ``control`` in the registry
(``stores/registry.py``); the server opens it with :meth:`ControlStore.for_server`
from its base URL.

Rows:

- user, project: ``id, name, created_at``
- key (as read): ``id, prefix, project_id, project (name), role, user_id, user (name or None),
  name, created_at, expires_at, revoked_at, last_used_at``; written with ``hash`` too, never read back
- variable: ``name, created_at, updated_at`` (and ``ciphertext`` when read one at a time)
- transaction: ``id, at, key_id, key_prefix, user_name, project_id, project (name), operation,
  target, outcome, status, duration_ms``

Errors: a broken constraint (a taken name, id or hash; an unknown project or
user) is ``Conflict("<action> violates a constraint: ...")``; any other failure
is ``BackendError``, and so is any call after :meth:`close`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engram._time import to_iso

if TYPE_CHECKING:
    from engram.config import Settings

Row = dict[str, Any]

# Roles a key row may carry (the control plane checks them before they get here).
KEY_ROLES = ("member", "admin", "server_admin")

# The fields of a transaction record as written (the row adds ``id``, and ``project`` when read).
TRANSACTION_FIELDS = (
    "at", "key_id", "key_prefix", "user_name", "project_id", "operation", "target", "outcome", "status",
    "duration_ms",
)


@dataclass(frozen=True)
class TransactionQuery:
    """Which transaction records to read, newest first: each filter given is an equality,
    ``since <= at < until``; then ``offset`` records skipped and ``limit`` returned.

    Built once where a request arrives (REST, dashboard, CLI) and passed through
    as it is. Times are kept as the contract's ISO-8601 text; a datetime given
    becomes that text.
    """

    project_id: str | None = None
    operation: str | None = None
    outcome: str | None = None
    key_id: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        for bound in ("since", "until"):
            if isinstance(value := getattr(self, bound), datetime):
                object.__setattr__(self, bound, to_iso(value))

    def conditions(self) -> list[tuple[str, str, str]]:
        """The filters given, as ``(field, operator, value)``: ``=`` for each equality, ``>=`` for
        ``since``, ``<`` for ``until`` (the operators SQL and Python spell alike, bar ``=``)."""
        given = (
            ("project_id", "=", self.project_id), ("operation", "=", self.operation), ("outcome", "=", self.outcome),
            ("key_id", "=", self.key_id), ("at", ">=", self.since), ("at", "<", self.until),
        )
        return [(field, operator, value) for field, operator, value in given if value is not None]


class ControlStore(ABC):
    """Persistence of the server's control plane; one per server (all projects)."""

    @classmethod
    @abstractmethod
    def for_server(cls, base_url: str, *, settings: Settings | None = None) -> ControlStore:
        """The control store of a server whose base store is ``base_url`` (opened, migrated);
        ``settings`` gives a pooled backend its pool and connect timeout."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; idempotent."""

    # -- users ----------------------------------------------------------------------
    @abstractmethod
    def insert_user(self, user: Row) -> None:
        """Add a user row (``id``, ``name`` unique)."""

    @abstractmethod
    def users(self) -> list[Row]:
        """Every user, by name."""

    @abstractmethod
    def user_by_name(self, name: str) -> Row | None: ...

    @abstractmethod
    def delete_user(self, user_id: str, *, revoked_at: str) -> int:
        """Delete a user and revoke every live key issued to them, at once; returns the keys revoked.

        Their keys, revoked, stay listed without a user.
        """

    # -- projects -------------------------------------------------------------------
    @abstractmethod
    def insert_project(self, project: Row) -> None:
        """Add a project row (``id``, ``name`` unique)."""

    @abstractmethod
    def projects(self) -> list[Row]:
        """Every project, by name."""

    @abstractmethod
    def project(self, *, id: str | None = None, name: str | None = None) -> Row | None:
        """The project with ``id`` (when given) or else ``name``."""

    # -- API keys -------------------------------------------------------------------
    @abstractmethod
    def insert_key(self, key: Row) -> None:
        """Add a key (``id``, ``prefix``, ``hash``, ``project_id``, ``role``, ``created_at``;
        optional ``user_id``, ``name``, ``expires_at``); its project and user must exist."""

    @abstractmethod
    def insert_first_key(self, key: Row) -> bool:
        """Add ``key`` (as :meth:`insert_key`) only if no key of its role was ever issued, atomically
        across every process on the store: servers starting together make one. False when one exists."""

    @abstractmethod
    def key_by_hash(self, digest: str) -> Row | None: ...

    @abstractmethod
    def key(self, key_id: str) -> Row | None: ...

    @abstractmethod
    def keys(self, *, project_id: str | None = None, include_revoked: bool = False) -> list[Row]:
        """Keys (of one project, or all), oldest first (ties by id)."""

    @abstractmethod
    def count_keys(self, role: str) -> int:
        """Keys ever issued with ``role``, revoked and expired ones included."""

    @abstractmethod
    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool:
        """Revoke a live key; False when there is none of that id or it was revoked already."""

    @abstractmethod
    def touch_key(self, key_id: str, *, used_at: str) -> None:
        """Note when a key was last used."""

    # -- variables (ciphertext only) --------------------------------------------------
    @abstractmethod
    def put_variable(self, project_id: str, name: str, seal: Callable[[], str], *, now: str) -> Row:
        """Insert or replace a variable with the ciphertext ``seal()`` returns, called inside the
        write, so that :meth:`replace_ciphertexts` never runs between sealing and storing.

        Returns ``name, created_at, updated_at`` (``created_at`` stays on a replace).
        """

    @abstractmethod
    def variable(self, project_id: str, name: str) -> Row | None: ...

    @abstractmethod
    def variables(self, project_id: str) -> list[Row]:
        """A project's variables by name: names and times only, never the ciphertext."""

    @abstractmethod
    def delete_variable(self, project_id: str, name: str) -> bool: ...

    @abstractmethod
    def replace_ciphertexts(self, reseal: Callable[[str, str, str], str]) -> int:
        """Rewrite every variable of every project as ``reseal(project_id, name, ciphertext)``,
        all or nothing, with no write in between (key rotation). Returns the number of variables."""

    # -- transaction log --------------------------------------------------------------
    @abstractmethod
    def record_transaction(self, record: Row) -> None:
        """Append a record (the transaction row without ``id`` and ``project``)."""

    @abstractmethod
    def transactions(self, query: TransactionQuery = TransactionQuery()) -> list[Row]:
        """The records ``query`` selects, newest first (all of them, 100 at a time, by default)."""

    @abstractmethod
    def prune_transactions(self, *, before: str) -> int:
        """Delete the records with ``at < before``; returns how many."""
