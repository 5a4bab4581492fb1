"""The in-process control-plane store of ``memory://`` servers (the
:class:`~engram.stores.control_base.ControlStore` contract over dicts).

One lock makes every method one transaction, as the SQLite store's write
transactions are: ``put_variable`` seals and stores under it, and
``replace_ciphertexts`` computes every new value before it changes any, so a
failure part-way changes nothing. It enforces what the SQLite schema does:
unique names, ids and hashes, and that a key's project and user exist.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engram.errors import BackendError, Conflict
from engram.stores.control_base import KEY_ROLES, TRANSACTION_FIELDS, ControlStore, Row, TransactionQuery

if TYPE_CHECKING:
    from engram.config import Settings

# The operators of TransactionQuery.conditions (ISO times compare as text).
_COMPARE = {"=": operator.eq, ">=": operator.ge, "<": operator.lt}


class MemoryControlStore(ControlStore):
    """Users, projects, keys, variables and the transaction log in dicts; gone when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False
        self._users: dict[str, Row] = {}
        self._projects: dict[str, Row] = {}
        self._keys: dict[str, Row] = {}  # id -> the stored row (with hash and user_id)
        self._variables: dict[tuple[str, str], Row] = {}
        self._transactions: list[Row] = []  # in id order
        self._next_transaction = 1

    @classmethod
    def for_server(cls, base_url: str, *, settings: Settings | None = None) -> MemoryControlStore:
        """A new, empty control plane: each ``memory://`` server has its own."""
        return cls()

    @contextmanager
    def _open(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise BackendError("the control database is closed")
            yield

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- users ------------------------------------------------------------------------
    def insert_user(self, user: Row) -> None:
        with self._open():
            _unique("creating a user", self._users, user["id"], "name", user["name"])
            self._users[user["id"]] = {"id": user["id"], "name": user["name"], "created_at": user["created_at"]}

    def users(self) -> list[Row]:
        with self._open():
            return sorted((dict(u) for u in self._users.values()), key=lambda u: u["name"])

    def user_by_name(self, name: str) -> Row | None:
        with self._open():
            return next((dict(u) for u in self._users.values() if u["name"] == name), None)

    def delete_user(self, user_id: str, *, revoked_at: str) -> int:
        with self._open():
            revoked = 0
            for key in self._keys.values():
                if key["user_id"] == user_id:
                    if key["revoked_at"] is None:
                        key["revoked_at"] = revoked_at
                        revoked += 1
                    key["user_id"] = None  # ON DELETE SET NULL
            self._users.pop(user_id, None)
            return revoked

    # -- projects ---------------------------------------------------------------------
    def insert_project(self, project: Row) -> None:
        with self._open():
            _unique("creating a project", self._projects, project["id"], "name", project["name"])
            self._projects[project["id"]] = {
                "id": project["id"], "name": project["name"], "created_at": project["created_at"],
            }

    def projects(self) -> list[Row]:
        with self._open():
            return sorted((dict(p) for p in self._projects.values()), key=lambda p: p["name"])

    def project(self, *, id: str | None = None, name: str | None = None) -> Row | None:
        with self._open():
            if id is not None:
                found = self._projects.get(id)
            else:
                found = next((p for p in self._projects.values() if p["name"] == name), None)
            return None if found is None else dict(found)

    # -- API keys -----------------------------------------------------------------------
    def insert_key(self, key: Row) -> None:
        self._insert_key(key, "creating an API key")

    def _insert_key(self, key: Row, action: str) -> None:
        with self._open():
            _unique(action, self._keys, key["id"], "hash", key["hash"])
            if key["project_id"] not in self._projects:
                raise Conflict(f"{action} violates a constraint: project {key['project_id']} does not exist")
            user_id = key.get("user_id")
            if user_id is not None and user_id not in self._users:
                raise Conflict(f"{action} violates a constraint: user {user_id} does not exist")
            if key["role"] not in KEY_ROLES:
                raise Conflict(f"{action} violates a constraint: role {key['role']!r} is not one of {KEY_ROLES}")
            self._keys[key["id"]] = {
                "id": key["id"], "prefix": key["prefix"], "hash": key["hash"], "project_id": key["project_id"],
                "role": key["role"], "user_id": user_id, "name": key.get("name"), "created_at": key["created_at"],
                "expires_at": key.get("expires_at"), "revoked_at": None, "last_used_at": None,
            }

    def _read_key(self, stored: Row) -> Row:
        """A key as listed: no hash; its project's and user's names joined in."""
        row = {k: v for k, v in stored.items() if k != "hash"}
        row["project"] = self._projects[stored["project_id"]]["name"]
        user = self._users.get(stored["user_id"]) if stored["user_id"] is not None else None
        row["user"] = None if user is None else user["name"]
        return row

    def key_by_hash(self, digest: str) -> Row | None:
        with self._open():
            return next((self._read_key(k) for k in self._keys.values() if k["hash"] == digest), None)

    def key(self, key_id: str) -> Row | None:
        with self._open():
            stored = self._keys.get(key_id)
            return None if stored is None else self._read_key(stored)

    def keys(self, *, project_id: str | None = None, include_revoked: bool = False) -> list[Row]:
        with self._open():
            chosen = [
                k for k in self._keys.values()
                if (project_id is None or k["project_id"] == project_id) and (include_revoked or k["revoked_at"] is None)
            ]
            chosen.sort(key=lambda k: (k["created_at"], k["id"]))
            return [self._read_key(k) for k in chosen]

    def insert_first_key(self, key: Row) -> bool:
        with self._open():  # the lock is re-entrant: insert_key runs inside this one check
            if any(k["role"] == key["role"] for k in self._keys.values()):
                return False
            self._insert_key(key, "creating the first API key")
            return True

    def count_keys(self, role: str) -> int:
        with self._open():
            return sum(1 for k in self._keys.values() if k["role"] == role)

    def revoke_key(self, key_id: str, *, revoked_at: str) -> bool:
        with self._open():
            stored = self._keys.get(key_id)
            if stored is None or stored["revoked_at"] is not None:
                return False
            stored["revoked_at"] = revoked_at
            return True

    def touch_key(self, key_id: str, *, used_at: str) -> None:
        with self._open():
            stored = self._keys.get(key_id)
            if stored is not None:
                stored["last_used_at"] = used_at

    # -- variables (ciphertext only) -----------------------------------------------------
    def put_variable(self, project_id: str, name: str, seal: Callable[[], str], *, now: str) -> Row:
        with self._open():
            if project_id not in self._projects:
                raise Conflict(f"storing a variable violates a constraint: project {project_id} does not exist")
            ciphertext = seal()
            stored = self._variables.get((project_id, name))
            if stored is None:
                stored = {"name": name, "ciphertext": ciphertext, "created_at": now, "updated_at": now}
                self._variables[(project_id, name)] = stored
            else:
                stored.update(ciphertext=ciphertext, updated_at=now)
            return {"name": name, "created_at": stored["created_at"], "updated_at": stored["updated_at"]}

    def variable(self, project_id: str, name: str) -> Row | None:
        with self._open():
            stored = self._variables.get((project_id, name))
            return None if stored is None else dict(stored)

    def variables(self, project_id: str) -> list[Row]:
        with self._open():
            rows = [
                {"name": v["name"], "created_at": v["created_at"], "updated_at": v["updated_at"]}
                for (p, _), v in self._variables.items() if p == project_id
            ]
            return sorted(rows, key=lambda v: v["name"])

    def delete_variable(self, project_id: str, name: str) -> bool:
        with self._open():
            return self._variables.pop((project_id, name), None) is not None

    def replace_ciphertexts(self, reseal: Callable[[str, str, str], str]) -> int:
        with self._open():
            resealed = {
                where: reseal(where[0], where[1], v["ciphertext"]) for where, v in sorted(self._variables.items())
            }  # every new value first: a failure part-way changes nothing
            for where, ciphertext in resealed.items():
                self._variables[where]["ciphertext"] = ciphertext
            return len(resealed)

    # -- transaction log -----------------------------------------------------------------
    def record_transaction(self, record: Row) -> None:
        with self._open():
            row = {"id": self._next_transaction, **{f: record.get(f) for f in TRANSACTION_FIELDS}}
            self._next_transaction += 1
            self._transactions.append(row)

    def transactions(self, query: TransactionQuery = TransactionQuery()) -> list[Row]:
        conditions = [(field, _COMPARE[op], value) for field, op, value in query.conditions()]
        with self._open():
            found = []
            for row in reversed(self._transactions):  # newest first
                if not all(compare(row[field], value) for field, compare, value in conditions):
                    continue
                project = self._projects.get(row["project_id"]) if row["project_id"] is not None else None
                found.append({**row, "project": None if project is None else project["name"]})
            return found[query.offset:query.offset + query.limit] if query.limit >= 0 else found[query.offset:]

    def prune_transactions(self, *, before: str) -> int:
        with self._open():
            kept = [t for t in self._transactions if t["at"] >= before]
            pruned = len(self._transactions) - len(kept)
            self._transactions = kept
            return pruned


def _unique(action: str, table: dict[str, Row], row_id: str, field: str, value: object) -> None:
    """The SQLite schema's PRIMARY KEY and UNIQUE checks, with the same kind of message."""
    if row_id in table:
        raise Conflict(f"{action} violates a constraint: id {row_id} is taken")
    if any(r[field] == value for r in table.values()):
        raise Conflict(f"{action} violates a constraint: that {field} is taken")
