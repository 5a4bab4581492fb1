"""Sessions and tasks of the Redis backend, mixed into ``RedisStore``.

Keys (drawn with the rest in :mod:`engram.stores.redis.layout`): a hash per session and per
task, sorted sets of them newest first (all, by status, a session's tasks); each write is one
Lua script of the layout (``PUT_SESSION``, ``PUT_TASK``), which keeps the indexes in step.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from engram._time import from_iso, to_iso
from engram.models import Session, Task
from engram.stores.queries import SessionQuery, TaskQuery
from engram.stores.redis import layout as lay
from engram.validation import json_encoder

_json = json_encoder(allow_nan=True)  # built once: json.dumps builds an encoder per call


def _session(h: dict[str, str]) -> Session:
    return Session.model_construct(
        id=h["id"],
        status=h["status"],
        metadata=json.loads(h["metadata"]),
        started_at=from_iso(h["started_at"]),
        ended_at=from_iso(h["ended_at"] or None),
        user_id=h.get("user_id") or None,
        agent_id=h.get("agent_id") or None,
    )


def _task(h: dict[str, str]) -> Task:
    return Task.model_construct(
        id=h["id"],
        agent_type=h["agent_type"],
        input=json.loads(h["input"]),
        output=json.loads(h["output"]),
        status=h["status"],
        session_id=h["session_id"] or None,
        created_at=from_iso(h["created_at"]),
        updated_at=from_iso(h["updated_at"]),
        completed_at=from_iso(h["completed_at"] or None),
    )


class RedisSessions:
    """Implements the sessions family of ``Store`` on Redis."""

    # Provided by RedisStore.
    _client: Any
    keys: lay.Keys
    _translated: Callable[[str], AbstractContextManager[None]]
    _scan: Callable[..., list[Any]]
    _put_session: Callable[..., Any]  # the PUT_SESSION script
    _put_task: Callable[..., Any]  # the PUT_TASK script

    def put_session(self, session: Session) -> None:
        with self._translated("storing a session"):
            self._put_session(
                keys=[self.keys.session(session.id), self.keys.sessions],
                args=[
                    self.keys.prefix,
                    session.id,
                    session.status,
                    _json(session.metadata),
                    to_iso(session.started_at),
                    to_iso(session.ended_at) or "",
                    lay.newest_first_member(session.started_at, session.id),
                    session.user_id or "",
                    session.agent_id or "",
                ],
            )

    def get_session(self, session_id: str) -> Session | None:
        with self._translated("reading a session"):
            h = self._client.hgetall(self.keys.session(session_id))
        return _session(h) if h else None

    def list_sessions(self, query: SessionQuery) -> list[Session]:
        index = self.keys.sessions if query.status is None else self.keys.sessions_by_status(query.status)
        keep = None
        cutoff = None if query.ended_before is None else lay.micros(query.ended_before)
        if cutoff is not None or query.user_id is not None or query.agent_id is not None:

            def keep(s: Session) -> bool:
                return (
                    (cutoff is None or (s.ended_at is not None and lay.micros(s.ended_at) < cutoff))
                    and (query.user_id is None or s.user_id == query.user_id)
                    and (query.agent_id is None or s.agent_id == query.agent_id)
                )

        with self._translated("listing sessions"):
            return self._scan(
                index, _session, keep, query.offset, query.limit, self._session_key, reverse=query.sort == "oldest"
            )

    def _session_key(self, member: str) -> str:
        return self.keys.session(member.split("|", 1)[1])

    def _task_key(self, member: str) -> str:
        return self.keys.task(member.split("|", 1)[1])

    def put_task(self, task: Task) -> None:
        session_key = self.keys.session(task.session_id) if task.session_id else self.keys.task(task.id)
        with self._translated("storing a task"):
            self._put_task(
                keys=[self.keys.task(task.id), self.keys.tasks, session_key],
                args=[
                    self.keys.prefix,
                    task.id,
                    task.agent_type,
                    _json(task.input),
                    _json(task.output),
                    task.status,
                    task.session_id or "",
                    to_iso(task.created_at),
                    to_iso(task.updated_at),
                    to_iso(task.completed_at) or "",
                    lay.newest_first_member(task.created_at, task.id),
                ],
            )

    def get_task(self, task_id: str) -> Task | None:
        with self._translated("reading a task"):
            h = self._client.hgetall(self.keys.task(task_id))
        return _task(h) if h else None

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        keep = None
        if query.session_id is not None:
            index = self.keys.tasks_by_session(query.session_id)
            if query.status is not None:
                status = query.status

                def keep(t: Task) -> bool:
                    return t.status == status

        elif query.status is not None:
            index = self.keys.tasks_by_status(query.status)
        else:
            index = self.keys.tasks
        with self._translated("listing tasks"):
            return self._scan(index, _task, keep, query.offset, query.limit, self._task_key)
