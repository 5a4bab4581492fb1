"""The retention part of the facade: prune what expired or grew old, count what is kept, vacuum."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

from engram import kinds as record_kinds
from engram import validation as check
from engram._time import utcnow
from engram.errors import InvalidInput
from engram.models import PruneReport, Stats
from engram.stores.base import PruneCounts, PrunePlan

if TYPE_CHECKING:
    from engram.blobs.store import BlobStore
    from engram.stores.base import Store


class Retention:
    """Pruning, counts and upkeep of ``backend`` and its blob store."""

    def __init__(self, backend: "Store", blobs: "BlobStore") -> None:
        self.backend = backend
        self.blobs = blobs

    def prune(
        self,
        *,
        older_than_days: float | None = None,
        keep_last_per_session: int | None = None,
        namespace: str | None = None,
        session_id: str | None = None,
        dry_run: bool = False,
    ) -> PruneReport:
        """Remove expired entries for good, and old conversation records when asked.

        With no arguments only expired entries go (they are already invisible).
        ``older_than_days`` also removes messages and checkpoints created, and
        sessions (with their tasks, messages, summary, checkpoints) ended, that
        many days ago; ``keep_last_per_session`` keeps only the newest N messages
        of each session. ``namespace`` limits the entries pruned, ``session_id``
        the conversation records; naming only one leaves the other kind alone.
        ``dry_run`` counts what would go and removes nothing. Unless a namespace
        or session narrows it, a prune also removes blobs older than the blob
        store's ``cleanup_after_days`` that no message attaches any more.
        """
        return self._plan(
            older_than_days=older_than_days,
            keep_last_per_session=keep_last_per_session,
            namespace=namespace,
            session_id=session_id,
            dry_run=dry_run,
        )

    def stats(self) -> Stats:
        """Counts of what the store holds."""
        c = self.backend.counts(now=utcnow())
        # One count per field of Counts that counts a kind (engram.kinds), expired entries apart.
        per_kind = {field: getattr(c, field) for kind in record_kinds.COUNTED for field in kind.counts}
        return Stats(
            url=self.backend.url,
            namespaces=c.namespaces,
            size_bytes=c.size_bytes,
            vectors=self.backend.count_vectors(None),
            embedding_model=None if (m := self.backend.vector_model()) is None else m.name,
            vector_search=self.backend.vector_search_path(),
            **per_kind,
        )

    def vacuum(self) -> None:
        """Reclaim space and optimize indexes."""
        self.backend.vacuum()

    def _plan(
        self,
        *,
        older_than_days: float | None,
        keep_last_per_session: int | None,
        namespace: str | None,
        session_id: str | None,
        dry_run: bool,
    ) -> PruneReport:
        now = utcnow()
        if older_than_days is not None and (
            isinstance(older_than_days, bool)
            or not isinstance(older_than_days, (int, float))
            or not math.isfinite(older_than_days)
            or not 0 <= older_than_days <= 36500
        ):
            raise InvalidInput(f"older_than_days must be a number from 0 to 36500, got {older_than_days!r}")
        if keep_last_per_session is not None and (
            isinstance(keep_last_per_session, bool) or not isinstance(keep_last_per_session, int) or keep_last_per_session < 0
        ):
            raise InvalidInput(f"keep_last_per_session must be a whole number >= 0, got {keep_last_per_session!r}")
        if namespace is not None:
            check.name("namespace", namespace)
        if session_id is not None:
            check.identifier("session id", session_id)
        # A namespace names entries, a session names conversation records: a
        # filter of one kind only leaves the other kind alone.
        expired = 0
        if session_id is None or namespace is not None:
            expired = self.backend.prune_entries(now=now, namespace=namespace, dry_run=dry_run)
        counts = PruneCounts()
        if (namespace is None or session_id is not None) and (
            older_than_days is not None or keep_last_per_session is not None
        ):
            plan = PrunePlan(
                before=None if older_than_days is None else now - timedelta(days=older_than_days),
                keep_last_per_session=keep_last_per_session,
                session_id=session_id,
                dry_run=dry_run,
            )
            counts = self.backend.prune_conversation(plan)
        # After the messages: a blob whose last message just went is eligible.
        blobs = self.blobs.cleanup(dry_run=dry_run) if namespace is None and session_id is None else 0
        return PruneReport(
            expired_entries=expired,
            messages=counts.messages,
            sessions=counts.sessions,
            checkpoints=counts.checkpoints,
            tasks=counts.tasks,
            blobs=blobs,
            dry_run=dry_run,
        )
