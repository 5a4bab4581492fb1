"""Dashboard sign-ins every server process sees: the sessions table of a shared control store.

:class:`~engram.server.dashboard.sessions.SessionStore` keeps sign-ins in one
process, so behind ``--workers N`` or a load balancer a browser would be signed
out whenever another process answered. On PostgreSQL the server keeps them in
its control schema instead, with the same rules: only ``sha256(token)`` is
stored, a session lives ``lifetime`` seconds, at most ``max_sessions`` are kept
(the oldest sign-in goes first). Times are wall-clock seconds, which servers on
different machines share.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from engram.server.dashboard.sessions import SessionStore, WebSession, token_digest


@runtime_checkable
class WebSessionRows(Protocol):
    """What a control store offers to keep sign-ins (``PostgresControlStore`` does)."""

    def put_web_session(self, session: dict[str, Any], *, now: float, max_sessions: int) -> None: ...

    def web_session(self, digest: str, *, now: float) -> dict[str, Any] | None: ...

    def drop_web_session(self, digest: str) -> None: ...


class SharedSessionStore:
    """:class:`SessionStore`'s interface over rows every server shares."""

    def __init__(self, rows: WebSessionRows, lifetime: float = 8 * 3600, max_sessions: int = 10_000,
                 clock: Callable[[], float] = time.time):
        self.rows = rows
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._clock = clock

    def create(self, key_id: str) -> tuple[str, WebSession]:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = WebSession(key_id, secrets.token_urlsafe(32), now + self.lifetime)
        self.rows.put_web_session(
            {"digest": token_digest(token), "key_id": key_id, "csrf": session.csrf, "expires": session.expires},
            now=now, max_sessions=self.max_sessions,
        )
        return token, session

    def get(self, token: str | None) -> WebSession | None:
        if not token:
            return None
        row = self.rows.web_session(token_digest(token), now=self._clock())
        return None if row is None else WebSession(row["key_id"], row["csrf"], row["expires"])

    def drop(self, token: str | None) -> None:
        if token:
            self.rows.drop_web_session(token_digest(token))


def session_store_for(control_store: object) -> SessionStore | SharedSessionStore:
    """Shared sign-ins when the control store is shared by every server, else this process's."""
    if isinstance(control_store, WebSessionRows):
        return SharedSessionStore(control_store)
    return SessionStore()
