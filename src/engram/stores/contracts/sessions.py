"""The sessions family: sessions and the tasks that belong to them."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator

from engram.models import Session, Task
from engram.stores.contracts.root import BackendRoot
from engram.stores.queries import SessionQuery, TaskQuery


class SessionRows(BackendRoot):
    """Sessions and tasks in and out; every backend implements the abstract ones."""

    @abstractmethod
    def put_session(self, session: Session) -> None:
        """Insert or replace a session by id."""

    @abstractmethod
    def get_session(self, session_id: str) -> Session | None: ...

    @abstractmethod
    def list_sessions(self, query: SessionQuery) -> list[Session]:
        """Sessions matching ``query``, newest started first."""

    @abstractmethod
    def put_task(self, task: Task) -> None:
        """Insert or replace a task by id; its session must exist."""

    @abstractmethod
    def get_task(self, task_id: str) -> Task | None: ...

    @abstractmethod
    def list_tasks(self, query: TaskQuery) -> list[Task]:
        """Tasks matching ``query``, newest created first."""

    def iter_sessions(self, *, batch_size: int = 1000) -> Iterator[Session]:
        """Every session (for export and copy)."""
        offset = 0
        while batch := self.list_sessions(SessionQuery(limit=batch_size, offset=offset)):
            yield from batch
            offset += len(batch)

    def iter_tasks(self, *, batch_size: int = 1000) -> Iterator[Task]:
        """Every task (for export and copy)."""
        offset = 0
        while batch := self.list_tasks(TaskQuery(limit=batch_size, offset=offset)):
            yield from batch
            offset += len(batch)
