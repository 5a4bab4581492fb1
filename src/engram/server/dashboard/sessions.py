"""Dashboard sign-in sessions: a random cookie token mapped to an API key id.

The browser holds only the token (HttpOnly, SameSite=Strict); the server keeps
``sha256(token) -> key id, CSRF token, expiry``, so a leaked store reveals no
usable cookie and the API key itself is never kept anywhere. The store lives in
the memory of one server process: a restart signs everyone out. Servers on
PostgreSQL keep sign-ins in the database instead (``_shared_sessions``), so
every process behind one address knows them.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "engram_session"


@dataclass(frozen=True, slots=True)
class WebSession:
    """One signed-in browser: which key it acts as, its CSRF token, when it ends (monotonic seconds)."""

    key_id: str
    csrf: str
    expires: float


def token_digest(token: str) -> str:
    """What a store keeps of a cookie token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    """Signed-in browsers of this process, bounded in number and in lifetime."""

    def __init__(self, lifetime: float = 8 * 3600, max_sessions: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, key_id: str) -> tuple[str, WebSession]:
        """A new session for ``key_id``; returns the cookie token (given out once) and the session."""
        token = secrets.token_urlsafe(32)
        session = WebSession(key_id, secrets.token_urlsafe(32), self._clock() + self.lifetime)
        with self._lock:
            self._sessions[token_digest(token)] = session
            while len(self._sessions) > self.max_sessions:  # the oldest sign-in goes first
                self._sessions.popitem(last=False)
        return token, session

    def get(self, token: str | None) -> WebSession | None:
        """The live session of a cookie token, or None (unknown or expired; an expired one is dropped)."""
        if not token:
            return None
        digest = token_digest(token)
        with self._lock:
            session = self._sessions.get(digest)
            if session is not None and session.expires <= self._clock():
                del self._sessions[digest]
                return None
        return session

    def drop(self, token: str | None) -> None:
        """Sign a browser out (nothing happens for an unknown token)."""
        if token:
            with self._lock:
                self._sessions.pop(token_digest(token), None)
