"""The conversation family (capability CONVERSATION): messages, summaries, profiles,
checkpoints and runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from engram.models import Checkpoint, Message, Profile, Run, Summary
from engram.search.query import Node
from engram.stores.contracts.root import BackendRoot
from engram.stores.queries import MessageQuery, PruneCounts, PrunePlan, RunQuery


class ConversationRows(BackendRoot):
    """Conversation records in and out.

    Not abstract: a backend without the capability still instantiates, and
    these raise ``Unsupported``. A backend that implements them declares
    CONVERSATION in ``capabilities``.
    """

    def append_messages(self, messages: Sequence[Message]) -> list[Message]:
        """Store new messages in one transaction, in order, each with a ``seq`` above any before.

        Returns the messages as stored (with their ``seq``).

        Raises:
            NotFound: a message's session does not exist (then nothing is stored).
        """
        raise self._unsupported("chat messages")

    def put_messages(self, messages: Sequence[Message]) -> list[Message]:
        """Store messages saved elsewhere, by id, in one transaction (copy and import); idempotent.

        A message whose id is stored already is left as it is. The others are
        inserted in input order, each keeping its ``seq`` when that is above
        every ``seq`` the store has handed out, else taking the next one: so
        messages given in ``seq`` order keep their order after whatever the
        store held, and into an empty store they keep their ``seq`` (and the
        summaries pointing at them stay true). ``created_at`` and every other
        field are kept.

        Returns every message as stored, in input order.

        Raises:
            NotFound: a new message's session does not exist (then nothing is stored).
        """
        raise self._unsupported("chat messages")

    def get_message(self, message_id: str) -> Message | None:
        """One message by id, or None."""
        raise self._unsupported("chat messages")

    def list_messages(self, query: MessageQuery) -> list[Message]:
        """Messages of a session in ``seq`` order; with ``limit``, the newest N of the range."""
        raise self._unsupported("chat messages")

    def count_messages(self, session_id: str, *, after_seq: int = 0) -> int:
        """How many messages of a session have ``seq > after_seq``."""
        raise self._unsupported("chat messages")

    def delete_messages(self, session_id: str) -> int:
        """Delete every message of a session and its summary; returns how many messages went."""
        raise self._unsupported("chat messages")

    def search_messages(
        self, query: Node, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        """BM25 full-text search over message content, scoped inside the index; best first."""
        raise self._unsupported("message search")

    def iter_messages(self, *, batch_size: int = 1000) -> Iterator[Message]:
        """Every message in ``seq`` order (for export and copy)."""
        raise self._unsupported("chat messages")

    def put_summary(self, summary: Summary) -> None:
        """Insert or replace the summary of a session.

        Raises:
            NotFound: the session does not exist.
        """
        raise self._unsupported("session summaries")

    def get_summary(self, session_id: str) -> Summary | None:
        raise self._unsupported("session summaries")

    def put_profile(self, profile: Profile) -> None:
        """Insert or replace the profile of a user."""
        raise self._unsupported("user profiles")

    def get_profile(self, user_id: str) -> Profile | None:
        raise self._unsupported("user profiles")

    def delete_profile(self, user_id: str) -> bool:
        """Delete a user's profile; True when it existed."""
        raise self._unsupported("user profiles")

    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Insert a new checkpoint.

        Raises:
            NotFound: its session does not exist.
        """
        raise self._unsupported("checkpoints")

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        raise self._unsupported("checkpoints")

    def list_checkpoints(self, session_id: str, *, status: str | None = None) -> list[Checkpoint]:
        """Checkpoints of a session, newest created first."""
        raise self._unsupported("checkpoints")

    def resume_checkpoint(self, checkpoint_id: str, *, now: datetime) -> Checkpoint:
        """Atomically move a paused checkpoint to ``resumed``; returns it as stored.

        Raises:
            NotFound: no such checkpoint.
            Conflict: it was already resumed (by this or any other caller).
        """
        raise self._unsupported("checkpoints")

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Delete a checkpoint; True when it existed."""
        raise self._unsupported("checkpoints")

    def put_run(self, run: Run) -> None:
        """Insert a new run.

        Raises:
            NotFound: its session does not exist.
            Conflict: a run with its id exists.
        """
        raise self._unsupported("runs")

    def get_run(self, run_id: str) -> Run | None:
        raise self._unsupported("runs")

    def list_runs(self, query: RunQuery) -> list[Run]:
        """Runs matching ``query``, newest updated first."""
        raise self._unsupported("runs")

    def move_run(
        self, run_id: str, *, from_statuses: Sequence[str], status: str, checkpoint_id: str | None, now: datetime
    ) -> Run:
        """Atomically move a run whose status is one of ``from_statuses`` to ``status``
        (and to ``checkpoint_id`` when not None), across processes; returns it as stored.

        Raises:
            NotFound: no such run.
            Conflict: its status is not one of ``from_statuses`` (e.g. another caller resumed it first).
        """
        raise self._unsupported("runs")

    def iter_runs(self, *, batch_size: int = 1000) -> Iterator[Run]:
        """Every run (for export and copy)."""
        offset = 0
        while batch := self.list_runs(RunQuery(limit=batch_size, offset=offset)):
            yield from batch
            offset += len(batch)

    def iter_summaries(self) -> Iterator[Summary]:
        """Every session summary (for export and copy)."""
        raise self._unsupported("session summaries")

    def iter_profiles(self) -> Iterator[Profile]:
        """Every user profile (for export and copy)."""
        raise self._unsupported("user profiles")

    def iter_checkpoints(self) -> Iterator[Checkpoint]:
        """Every checkpoint (for export and copy)."""
        raise self._unsupported("checkpoints")

    def prune_conversation(self, plan: PrunePlan) -> PruneCounts:
        """Remove (or with ``plan.dry_run`` only count) what ``plan`` names."""
        raise self._unsupported("conversation retention")
