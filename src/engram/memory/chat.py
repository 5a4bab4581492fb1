"""The chat part of the facade: the messages of sessions (add, history, search) and their summaries.

It validates, assigns ids and timestamps, and composes the CONVERSATION
primitives of the store, as the entries part does for entries. Its
collaborators are explicit: the semantic part embeds and searches, the
sessions part opens the sessions new messages name and says which do not exist.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from engram import validation as check
from engram._time import utcnow
from engram.errors import InvalidInput, NotFound
from engram.memory.semantic import WORD_COUNT_CAP as cap_words
from engram.memory.semantic import as_vector
from engram.models import Attachment, Message, MessageHit, MessageSearchResult, Summary
from engram.stores.base import MESSAGE_VECTOR, MessageQuery, MessageVectorItem

if TYPE_CHECKING:
    from engram.memory.semantic import Semantic
    from engram.memory.sessions import Sessions
    from engram.stores.base import Store

ROLES = ("system", "user", "assistant", "tool")
_MESSAGE_FIELDS = frozenset(
    {
        "session_id", "role", "content", "user_id", "agent_id", "metadata", "tool_calls", "tool_call_id",
        "attachments", "embedding",
    }
)


def _utc(field: str, value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime or a message id, not {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)  # naive means UTC


def _optional_name(field: str, value: Any) -> str | None:
    return None if value is None else check.name(field, value)


class Chat:
    """The messages of sessions in ``backend``, with their summaries.

    Args:
        semantic: embeds messages and runs the search modes.
        sessions: opens the sessions new messages name, and says which do not exist.
        max_bytes: the largest content, metadata or tool payload.
    """

    def __init__(self, backend: "Store", semantic: "Semantic", sessions: "Sessions", *, max_bytes: int) -> None:
        self.backend = backend
        self.semantic = semantic
        self.sessions = sessions
        self.max_bytes = max_bytes

    # -- message vectors -----------------------------------------------------------
    @property
    def _message_vectors(self) -> bool:
        return MESSAGE_VECTOR in self.backend.capabilities

    def _no_message_vectors_note(self) -> str:
        return (
            f"the {self.backend.url.split(':', 1)[0]}:// backend cannot search messages by meaning "
            f"(it lacks the {MESSAGE_VECTOR!r} capability): search them with mode='fts'"
        )

    def _message_vectors_for(
        self, messages: builtins.list[Message], given: builtins.list[Any], embed: bool | None
    ) -> builtins.list[tuple[int, Any]]:
        """What to embed for these messages, computed before anything is written."""
        note = self.semantic.embedder_note if self._message_vectors else self._no_message_vectors_note()
        return self.semantic.embeddings(
            [m.content for m in messages], given, embed, capable=self._message_vectors, note=note, skip_empty=True
        )

    def _attach_message_vectors(self, stored: builtins.list[Message], found: builtins.list[tuple[int, Any]]) -> None:
        if found:
            items = [MessageVectorItem(stored[i].id, stored[i].content, v) for i, v in found]
            self.backend.put_message_vectors(items, model=self.semantic.model_for(len(items[0].vector)))

    # -- messages ----------------------------------------------------------------
    def message(
        self,
        session_id: Any,
        role: Any,
        content: Any,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        metadata: Any = None,
        tool_calls: Any = None,
        tool_call_id: Any = None,
        attachments: Any = None,
        now: datetime,
    ) -> Message:
        check.choice("role", role, ROLES)
        if content is None and role == "assistant" and tool_calls:
            content = ""  # an assistant turn that only calls tools
        calls: builtins.list[dict[str, Any]] = []
        if tool_calls is not None:
            if role != "assistant":
                raise InvalidInput(f"tool_calls belong on an assistant message, not on a {role} message")
            if not isinstance(tool_calls, (list, tuple)) or not all(isinstance(c, Mapping) for c in tool_calls):
                raise InvalidInput("tool_calls must be a list of objects, e.g. [{'id': 'call_1', 'type': 'function', ...}]")
            calls = [dict(c) for c in tool_calls]
            for c in calls:
                if "id" in c and not isinstance(c["id"], str):
                    raise InvalidInput(f"a tool call id must be a string, got {c['id']!r}")
            check.json_value("tool_calls", calls, self.max_bytes)
        if tool_call_id is not None and role != "tool":
            raise InvalidInput(f"tool_call_id belongs on a tool message, not on a {role} message")
        files: builtins.list[Attachment] = []
        for i, a in enumerate(attachments or ()):
            if isinstance(a, Attachment):
                files.append(a)
            elif isinstance(a, Mapping):
                try:
                    files.append(Attachment.model_validate(dict(a)))
                except ValueError as exc:
                    raise InvalidInput(f"attachment {i} must have a uri and optional name, media_type, size_bytes, metadata: {exc}") from None
            else:
                raise InvalidInput(f"attachment {i} must be an Attachment or a dict with a uri, not {type(a).__name__}")
            check.name(f"attachment {i} uri", files[-1].uri)
        if files:
            check.json_value("attachments", [f.model_dump(mode="json") for f in files], self.max_bytes)
        return Message.model_construct(
            id=str(uuid.uuid4()),
            session_id=check.identifier("session id", session_id),
            role=role,
            content=check.content(content, self.max_bytes),
            user_id=_optional_name("user_id", user_id),
            agent_id=_optional_name("agent_id", agent_id),
            metadata=check.metadata(metadata, self.max_bytes),
            tool_calls=calls,
            tool_call_id=_optional_name("tool_call_id", tool_call_id),
            attachments=files,
            created_at=now,
            seq=0,
        )

    def add_message(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tool_calls: builtins.list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        attachments: builtins.list[Attachment | dict[str, Any]] | None = None,
        embed: bool | None = None,
        embedding: Any = None,
    ) -> Message:
        """Append one message to a session's history; a session id never seen before starts that session.

        Args:
            role: ``system``, ``user``, ``assistant`` or ``tool``.
            tool_calls: on an assistant message, the calls it makes (OpenAI shape).
            tool_call_id: on a tool message, the id of the call it answers.
            attachments: references to stored blobs or files (``{"uri": ..., "name": ...}``).
            embed: None embeds the content when an embedder is configured (and
                the backend can search messages by meaning); False never; True
                requires an embedder.
            embedding: a precomputed vector of the store's dimensions, instead of embedding here.
        Raises:
            InvalidInput: a bad role, content, metadata, tool field or embedding, or a
                new session's id that is not 1 to 128 letters, digits and ``_ . : @ -``.
            Unsupported: ``embedding`` given to a backend that cannot keep message vectors.
        """
        message = self.message(
            session_id,
            role,
            content,
            user_id=user_id,
            agent_id=agent_id,
            metadata=metadata,
            tool_calls=tool_calls,
            tool_call_id=tool_call_id,
            attachments=attachments,
            now=utcnow(),
        )
        given = None if embedding is None else as_vector(embedding)
        vectors = self._message_vectors_for([message], [given], embed)
        stored = self._append([message])
        self._attach_message_vectors(stored, vectors)
        return stored[0]

    def add_messages(
        self, messages: Iterable[Mapping[str, Any]], *, session_id: str | None = None, embed: bool | None = None
    ) -> builtins.list[Message]:
        """Append many messages in one transaction, in order; returns them as stored.

        Each item is a dict with ``role`` and ``content`` and optionally every
        keyword of :meth:`add_message` (``embedding`` included), and
        ``session_id`` (default: the argument). Messages without an embedding
        are embedded in one batch when an embedder is configured (``embed`` as
        in :meth:`add_message`). Session ids never seen before start those
        sessions. Nothing is stored when any item is invalid.
        """
        now = utcnow()
        built = []
        given: builtins.list[Any] = []
        for i, item in enumerate(messages):
            if not isinstance(item, Mapping):
                raise InvalidInput(f"message {i} must be a dict with role and content, not {type(item).__name__}")
            unknown = set(item) - _MESSAGE_FIELDS
            if unknown:
                raise InvalidInput(
                    f"message {i} has unknown field(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"allowed: {', '.join(sorted(_MESSAGE_FIELDS))}"
                )
            fields = dict(item)
            sid = fields.pop("session_id", session_id)
            if sid is None:
                raise InvalidInput(f"message {i} has no session_id")
            if "role" not in fields:
                raise InvalidInput(f"message {i} has no role")
            try:
                vec = fields.pop("embedding", None)
                built.append(self.message(sid, fields.pop("role"), fields.pop("content", None), now=now, **fields))
                given.append(None if vec is None else as_vector(vec))
            except InvalidInput as exc:
                raise type(exc)(f"message {i}: {exc}") from None
        if not built:
            return []
        vectors = self._message_vectors_for(built, given, embed)
        stored = self._append(built)
        self._attach_message_vectors(stored, vectors)
        return stored

    def _append(self, messages: builtins.list[Message]) -> builtins.list[Message]:
        """Append, opening first the sessions never seen before (a chat history takes any session id)."""
        try:
            return self.backend.append_messages(messages)
        except NotFound:
            # The common case (a known session) costs nothing extra; a new one costs a retry.
            if not self.sessions.open_for(messages):
                raise
            return self.backend.append_messages(messages)

    def message_get(self, id: str) -> Message | None:
        """One message by id, or None."""
        return self.backend.get_message(check.identifier("message id", id))

    def _bound(self, field: str, value: Any, session_id: str) -> tuple[int | None, datetime | None]:
        if value is None:
            return None, None
        if isinstance(value, Message):
            value = value.id
        if isinstance(value, str):
            message = self.backend.get_message(check.identifier(field, value))
            if message is None or message.session_id != session_id:
                raise NotFound(f"{field}: message {value} is not in session {session_id}")
            return message.seq, None
        return None, _utc(field, value)

    def history(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        before: datetime | str | Message | None = None,
        after: datetime | str | Message | None = None,
    ) -> builtins.list[Message]:
        """The messages of a session, oldest first.

        Args:
            limit: only the newest N (of those in range), still oldest first.
            before / after: exclusive bounds: a time (``created_at``) or a message (id).
        Raises:
            NotFound: the session does not exist.
        """
        check.identifier("session id", session_id)
        before_seq, before_time = self._bound("before", before, session_id)
        after_seq, after_time = self._bound("after", after, session_id)
        query = MessageQuery(
            session_id=session_id,
            limit=None if limit is None else check.limit(limit),
            before_seq=before_seq,
            after_seq=after_seq,
            before=before_time,
            after=after_time,
        )
        found = self.backend.list_messages(query)
        if not found:  # only an empty answer can hide an unknown session
            self.sessions.require(session_id)
        return found

    def delete_history(self, session_id: str) -> int:
        """Delete every message of a session (and its summary); returns how many messages went.

        Raises:
            NotFound: the session does not exist.
        """
        deleted = self.backend.delete_messages(check.identifier("session id", session_id))
        if not deleted:
            self.sessions.require(session_id)
        return deleted

    def search_messages(
        self,
        query: str,
        *,
        mode: str = "auto",
        threshold: float | None = None,
        vector: Any = None,
        session_id: str | None = None,
        user_id: str | None = None,
        limit: int = 10,
    ) -> MessageSearchResult:
        """Search message content by words, by meaning, or both, best first.

        The modes, query language and fusion are those of :meth:`search`:
        ``fts`` (BM25, the query language), ``vector`` (cosine similarity to
        the query's embedding or to ``vector``), ``hybrid`` (both fused by
        rank), ``auto`` (hybrid when messages have embeddings and a query
        vector can be had, else fts). ``session_id`` / ``user_id`` scope every
        list of candidates, the vector one included.

        Raises:
            QuerySyntaxError: the query cannot be parsed (fts mode).
            InvalidInput: a bad mode, threshold or vector, or search by meaning without an embedder.
            Unsupported: vector or hybrid mode on a backend that cannot search messages by meaning.
        """
        self.semantic.check_search(query, mode, threshold)
        sid = None if session_id is None else check.identifier("session id", session_id)
        uid = _optional_name("user_id", user_id)
        limit = check.limit(limit)
        backend = self.backend
        match, fused = self.semantic.ranked(
            query,
            mode=mode,
            limit=limit,
            threshold=threshold,
            vector=vector,
            capable=self._message_vectors,
            has_vectors=lambda: backend.count_message_vectors() > 0,
            text=lambda node, n: backend.search_messages(node, session_id=sid, user_id=uid, limit=n),
            near=lambda qvec, n: backend.search_message_vectors(qvec, session_id=sid, user_id=uid, limit=n),
            count=lambda node, cap: backend.count_message_text_matches(node, session_id=sid, user_id=uid, cap=cap),
            frequency=lambda term: backend.count_message_text_matches(term, session_id=None, user_id=None, cap=cap_words) or 0,
            unsupported=None if self._message_vectors else self._no_message_vectors_note(),
        )
        results = [
            MessageHit.model_construct(message=f.entry, score=f.score, match_type=match, fts_score=f.fts_score,
                                       fts_rank=f.fts_rank, vector_score=f.vector_score, vector_rank=f.vector_rank)
            for f in fused
        ]
        return MessageSearchResult.model_construct(count=len(results), results=results)

    # -- summaries -----------------------------------------------------------------
    def summary(self, session_id: str) -> Summary | None:
        """The running summary of a session, or None when it has none yet.

        Raises:
            NotFound: the session does not exist.
        """
        summary = self.backend.get_summary(check.identifier("session id", session_id))
        if summary is None:
            self.sessions.require(session_id)
        return summary

    def summary_save(self, session_id: str, content: str, *, message_count: int, last_seq: int = 0) -> Summary:
        """Store the summary of a session, covering ``message_count`` messages up to ``last_seq``.

        Raises:
            NotFound: the session does not exist.
        """
        for field, value in (("message_count", message_count), ("last_seq", last_seq)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"{field} must be a whole number >= 0, got {value!r}")
        summary = Summary.model_construct(
            session_id=check.identifier("session id", session_id),
            content=check.content(content, self.max_bytes),
            message_count=message_count,
            last_seq=last_seq,
            updated_at=utcnow(),
        )
        self.backend.put_summary(summary)
        return summary
