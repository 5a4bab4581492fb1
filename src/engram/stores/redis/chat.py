"""Conversation primitives of the Redis backend: messages, summaries, profiles, checkpoints.

A mixin of :class:`engram.stores.redis.store.RedisStore`, using its client,
key names and error translation. Keys are drawn in
:mod:`engram.stores.redis.layout`; every write that must be atomic (a message
batch and its seq, a history deletion, resuming a checkpoint, a prune step) is
one Lua script of :mod:`engram.stores.redis.chat_lua`.

Message search runs client-side like entry search: each process keeps every
message's analyzed content in one inverted index and ranks with the same BM25
as ``memory://`` (idf over all messages, the session / user scope applied to
the candidates). Before a search it reads two counters in one round trip: the
last ``seq`` handed out (new messages are then read by ``seq`` range, so an
append costs the next search only the new messages) and the removal counter
(a deletion makes it re-read the id list). Measured limits: docs/backends.md.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from engram._time import from_iso, to_iso
from engram.errors import Conflict, NotFound
from engram.models import Attachment, Checkpoint, Message, Profile, Summary, Trait
from engram.search.bm25 import AnalyzedText, CompiledQuery
from engram.search.inverted import InvertedIndex
from engram.search.query import Node
from engram.stores.base import MessageQuery, PruneCounts, PrunePlan
from engram.stores.redis import chat_lua as lua
from engram.stores.redis import layout as lay

CHUNK = 1000  # records per pipeline or script call
SESSIONS_PER_SCRIPT = 100  # sessions deleted per script call when pruning (each holds its records)
END_STATUSES = ("ended", "error")
_R = TypeVar("_R")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def message_fields(m: Message) -> list[str]:
    """The hash fields of a message besides id, session_id and seq; optional ones only when set."""
    fields = ["role", m.role, "content", m.content, "metadata", _json(m.metadata), "created_at", to_iso(m.created_at)]
    for name in ("user_id", "agent_id", "tool_call_id"):
        value = getattr(m, name)
        if value is not None:
            fields += [name, value]
    if m.tool_calls:
        fields += ["tool_calls", _json(m.tool_calls)]
    if m.attachments:
        fields += ["attachments", _json([a.model_dump(mode="json") for a in m.attachments])]
    return fields  # type: ignore[return-value]


def _message(h: dict[str, str]) -> Message:
    calls, files = h.get("tool_calls"), h.get("attachments")
    return Message.model_construct(
        id=h["id"],
        session_id=h["session_id"],
        role=h["role"],
        content=h["content"],
        user_id=h.get("user_id"),
        agent_id=h.get("agent_id"),
        metadata=json.loads(h["metadata"]),
        tool_calls=json.loads(calls) if calls else [],
        tool_call_id=h.get("tool_call_id"),
        attachments=[Attachment.model_construct(**a) for a in json.loads(files)] if files else [],
        created_at=from_iso(h["created_at"]),
        seq=int(h["seq"]),
    )


def _summary(h: dict[str, str]) -> Summary:
    return Summary.model_construct(
        session_id=h["session_id"],
        content=h["content"],
        message_count=int(h["message_count"]),
        last_seq=int(h["last_seq"]),
        updated_at=from_iso(h["updated_at"]),
    )


def _profile(h: dict[str, str]) -> Profile:
    return Profile.model_construct(
        user_id=h["user_id"],
        traits={
            name: Trait.model_construct(
                value=t["value"], source_message_ids=t["source_message_ids"], updated_at=from_iso(t["updated_at"])
            )
            for name, t in json.loads(h["traits"]).items()
        },
        updated_at=from_iso(h["updated_at"]),
        schema_name=h.get("schema_name") or None,
        schema_version=h.get("schema_version") or None,
    )


def _checkpoint(h: dict[str, str]) -> Checkpoint:
    return Checkpoint.model_construct(
        id=h["id"],
        session_id=h["session_id"],
        run_id=h.get("run_id"),
        state=json.loads(h["state"]),
        status=h["status"],
        created_at=from_iso(h["created_at"]),
        resumed_at=from_iso(h.get("resumed_at")),
    )


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))


@dataclass
class _MessageIndex:
    """This process's search index of every message, keyed by seq.

    Only what ranking and scoping need is held (analyzed content, id, session,
    user); the hits are read in full when a search returns them.
    """

    index: InvertedIndex[int] = field(default_factory=InvertedIndex)
    scope: dict[int, tuple[str, str, str | None]] = field(default_factory=dict)  # seq -> (id, session, user)
    last_seq: int = 0  # the highest seq handed out when last synced
    removed: int = 0  # the removal counter when last synced
    loaded: bool = False


class RedisConversation:
    """Implements the CONVERSATION primitives of ``Store`` on Redis."""

    # Provided by RedisStore.
    _client: Any
    keys: lay.Keys
    _translated: Any
    _hashes: Any
    _drop_session_runs: Callable[[Sequence[str]], int]  # RedisRuns: forget the runs of deleted sessions

    def _init_conversation(self) -> None:
        register = self._client.register_script
        self._write_messages = register(lua.WRITE_MESSAGES)
        self._delete_history = register(lua.DELETE_HISTORY)
        self._delete_messages_script = register(lua.DELETE_MESSAGES)
        self._put_summary = register(lua.PUT_SUMMARY)
        self._put_checkpoint = register(lua.PUT_CHECKPOINT)
        self._resume_checkpoint = register(lua.RESUME_CHECKPOINT)
        self._delete_checkpoints = register(lua.DELETE_CHECKPOINTS)
        self._delete_sessions = register(lua.DELETE_SESSIONS)
        self._search_fields = register(lua.SEARCH_FIELDS)
        self._message_index = _MessageIndex()
        self._message_index_lock = threading.Lock()

    # -- messages --------------------------------------------------------------
    def _store_messages(self, messages: Sequence[Message], mode: str, action: str) -> list[int]:
        args: list[Any] = [self.keys.prefix, mode, len(messages)]
        for m in messages:
            fields = message_fields(m)
            args += [m.id, m.session_id, m.seq, lay.micros(m.created_at), len(fields) // 2, *fields]
        keys = [self.keys.messages, self.keys.messages_seq, self.keys.messages_created]
        with self._translated(action):
            return [int(s) for s in self._write_messages(keys=keys, args=args)]

    def append_messages(self, messages: Sequence[Message]) -> list[Message]:
        if not messages:
            return []
        action = "storing a message" if len(messages) == 1 else f"storing {len(messages)} messages"
        seqs = self._store_messages(messages, "append", action)
        return [m.model_copy(update={"seq": s}) for m, s in zip(messages, seqs)]

    def put_messages(self, messages: Sequence[Message]) -> list[Message]:
        if not messages:
            return []
        seqs = self._store_messages(messages, "put", f"copying {len(messages)} messages")
        with self._translated("reading messages"):
            stored = {m.id: m for m in self._load_messages([m.id for m, s in zip(messages, seqs) if s < 0])}
        out = []
        for m, s in zip(messages, seqs):
            if s > 0:
                out.append(m.model_copy(update={"seq": s}))
            else:  # stored before this call: as it is
                out.append(stored.get(m.id) or m.model_copy(update={"seq": -s}))
        return out

    def _load_messages(self, ids: Sequence[str]) -> list[Message]:
        """The messages of ``ids`` still stored, in the order of ``ids``."""
        found: list[Message] = []
        for chunk in _chunks(ids):
            found += [_message(h) for h in self._hashes([self.keys.message(i) for i in chunk]) if h]
        return found

    def get_message(self, message_id: str) -> Message | None:
        with self._translated("reading a message"):
            h = self._client.hgetall(self.keys.message(message_id))
        return _message(h) if h else None

    def list_messages(self, query: MessageQuery) -> list[Message]:
        if query.limit == 0:
            return []
        index = self.keys.session_messages(query.session_id)
        low = "-inf" if query.after_seq is None else f"({query.after_seq}"
        high = "+inf" if query.before_seq is None else f"({query.before_seq}"
        after, before = query.after, query.before

        def in_time(m: Message) -> bool:
            return (after is None or m.created_at > after) and (before is None or m.created_at < before)

        client = self._client
        with self._translated("reading the history"):
            if query.limit is None:
                found = self._load_messages(client.zrangebyscore(index, low, high))
                return found if after is None and before is None else [m for m in found if in_time(m)]
            if after is None and before is None:
                ids = client.zrevrangebyscore(index, high, low, start=0, num=query.limit)
                ids.reverse()
                return self._load_messages(ids)
            # Bounded by time and limited: walk back from the newest until enough are in range.
            newest: list[Message] = []
            start = 0
            while len(newest) < query.limit:
                ids = client.zrevrangebyscore(index, high, low, start=start, num=CHUNK)
                if not ids:
                    break
                start += len(ids)
                newest += [m for m in self._load_messages(ids) if in_time(m)]
            newest = newest[: query.limit]
            newest.reverse()
            return newest

    def count_messages(self, session_id: str, *, after_seq: int = 0) -> int:
        with self._translated("counting messages"):
            return int(self._client.zcount(self.keys.session_messages(session_id), f"({after_seq}", "+inf"))

    def delete_messages(self, session_id: str) -> int:
        k = self.keys
        with self._translated("deleting the history"):
            return int(
                self._delete_history(
                    keys=[
                        k.session_messages(session_id), k.messages, k.messages_created, k.messages_removed,
                        k.summary(session_id), k.summaries, k.messages_removals, k.messages_removals_floor,
                    ],
                    args=[k.prefix, session_id],
                )
            )  # fmt: skip

    def _drop(self, cache: _MessageIndex, seqs: Iterator[int] | list[int]) -> None:
        for seq in seqs:
            if cache.scope.pop(seq, None) is not None:
                cache.index.remove(seq)

    def _index_messages(self, cache: _MessageIndex, wanted: dict[int, str]) -> None:
        """Add the messages ``wanted`` (seq -> id) that are still stored to ``cache``."""
        items = list(wanted.items())
        for chunk in _chunks(items):
            flat = self._search_fields(args=[self.keys.message(""), *(ident for _, ident in chunk)])
            for i, (seq, ident) in enumerate(chunk):
                content, session, user = flat[3 * i : 3 * i + 3]
                if session is not None:  # else deleted since the id list was read
                    cache.scope[seq] = (ident, session, user)
                    cache.index.add(seq, AnalyzedText.of(content))

    def _sync_message_index(self) -> _MessageIndex:
        """This process's message index, brought up to date (call under its lock).

        Deletions since the last sync are read from the removal log, appends by
        ``seq`` range (seq only grows); the whole id list is re-read only on the
        first search, or when the log no longer reaches back to the last sync.
        """
        cache, client, k = self._message_index, self._client, self.keys
        top, removed, floor = (int(v or 0) for v in client.mget([k.messages_seq, k.messages_removed, k.messages_removals_floor]))
        if cache.loaded and removed == cache.removed and top == cache.last_seq:
            return cache
        if cache.loaded and cache.removed >= floor and removed >= cache.removed and top >= cache.last_seq:
            if removed > cache.removed:
                gone = client.zrangebyscore(k.messages_removals, f"({cache.removed}", removed)
                self._drop(cache, (int(seq) for seq in gone))
            fresh = client.zrangebyscore(k.messages, f"({cache.last_seq}", top, withscores=True) if top > cache.last_seq else []
            wanted = {int(score): ident for ident, score in fresh}
        else:  # first sync, or the log was trimmed past ours, or the store was emptied
            wanted = {int(score): ident for ident, score in client.zrange(k.messages, 0, -1, withscores=True)}
            self._drop(cache, [s for s, held in cache.scope.items() if wanted.get(s) != held[0]])
        self._index_messages(cache, {seq: ident for seq, ident in wanted.items() if seq not in cache.scope})
        cache.last_seq, cache.removed, cache.loaded = top, removed, True
        return cache

    def search_messages(
        self, query: Node, *, session_id: str | None, user_id: str | None, limit: int
    ) -> list[tuple[Message, float]]:
        compiled = CompiledQuery(query, weights=(1.0,))
        with self._translated("searching messages"), self._message_index_lock:
            cache = self._sync_message_index()
            scope = cache.scope

            def accept(seq: int) -> bool:
                _, session, user = scope[seq]
                return (session_id is None or session == session_id) and (user_id is None or user == user_id)

            ranked = [(scope[seq][0], score) for seq, score in cache.index.rank(compiled, accept)[:limit]]
            found = {m.id: m for m in self._load_messages([ident for ident, _ in ranked])}
        return [(found[ident], score) for ident, score in ranked if ident in found]

    def iter_messages(self, *, batch_size: int = 1000) -> Iterator[Message]:
        after = 0
        while True:
            with self._translated("exporting messages"):
                pairs = self._client.zrangebyscore(
                    self.keys.messages, f"({after}", "+inf", start=0, num=batch_size, withscores=True
                )
                if not pairs:
                    return
                batch = self._load_messages([ident for ident, _ in pairs])
            after = int(pairs[-1][1])
            yield from batch

    # -- summaries and profiles -----------------------------------------------
    def put_summary(self, summary: Summary) -> None:
        s = summary
        with self._translated("storing a summary"):
            self._put_summary(
                keys=[self.keys.session(s.session_id), self.keys.summary(s.session_id), self.keys.summaries],
                args=[s.session_id, s.content, s.message_count, s.last_seq, to_iso(s.updated_at)],
            )

    def get_summary(self, session_id: str) -> Summary | None:
        with self._translated("reading a summary"):
            h = self._client.hgetall(self.keys.summary(session_id))
        return _summary(h) if h else None

    def iter_summaries(self) -> Iterator[Summary]:
        return self._iter_indexed("exporting summaries", self.keys.summaries, self.keys.summary, _summary)

    def _iter_indexed(
        self, what: str, index: str, key_of: Callable[[str], str], record_of: Callable[[dict[str, str]], _R]
    ) -> Iterator[_R]:
        """The records whose ids the set ``index`` holds, in id order, read a chunk of hashes at a time."""
        with self._translated(what):
            ids = sorted(self._client.smembers(index))
        for chunk in _chunks(ids):
            with self._translated(what):
                hashes = self._hashes([key_of(i) for i in chunk])
            yield from (record_of(h) for h in hashes if h)

    def put_profile(self, profile: Profile) -> None:
        traits = _json({name: t.model_dump(mode="json") for name, t in profile.traits.items()})
        with self._translated("storing a profile"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(
                self.keys.profile(profile.user_id),
                mapping={
                    "user_id": profile.user_id, "traits": traits, "updated_at": to_iso(profile.updated_at),
                    "schema_name": profile.schema_name or "", "schema_version": profile.schema_version or "",
                },
            )
            pipe.sadd(self.keys.profiles, profile.user_id)
            pipe.execute()

    def get_profile(self, user_id: str) -> Profile | None:
        with self._translated("reading a profile"):
            h = self._client.hgetall(self.keys.profile(user_id))
        return _profile(h) if h else None

    def delete_profile(self, user_id: str) -> bool:
        with self._translated("deleting a profile"):
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(self.keys.profile(user_id))
            pipe.srem(self.keys.profiles, user_id)
            deleted, _ = pipe.execute()
        return bool(deleted)

    def iter_profiles(self) -> Iterator[Profile]:
        return self._iter_indexed("exporting profiles", self.keys.profiles, self.keys.profile, _profile)

    # -- checkpoints -----------------------------------------------------------
    def put_checkpoint(self, checkpoint: Checkpoint) -> None:
        c = checkpoint
        fields = ["id", c.id, "session_id", c.session_id, "state", _json(c.state), "status", c.status,
                  "created_at", to_iso(c.created_at)]  # fmt: skip
        if c.run_id is not None:
            fields += ["run_id", c.run_id]
        if c.resumed_at is not None:
            fields += ["resumed_at", to_iso(c.resumed_at)]
        keys = [
            self.keys.session(c.session_id), self.keys.checkpoint(c.id), self.keys.checkpoints,
            self.keys.session_checkpoints(c.session_id),
        ]  # fmt: skip
        with self._translated("storing a checkpoint"):
            self._put_checkpoint(keys=keys, args=[c.id, c.session_id, lay.micros(c.created_at), *fields])

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        with self._translated("reading a checkpoint"):
            h = self._client.hgetall(self.keys.checkpoint(checkpoint_id))
        return _checkpoint(h) if h else None

    def list_checkpoints(self, session_id: str, *, status: str | None = None) -> list[Checkpoint]:
        with self._translated("listing checkpoints"):
            ids = self._client.zrange(self.keys.session_checkpoints(session_id), 0, -1)
            found = [_checkpoint(h) for h in self._hashes([self.keys.checkpoint(i) for i in ids]) if h]
        found = [c for c in found if status is None or c.status == status]
        found.sort(key=lambda c: c.id)
        found.sort(key=lambda c: c.created_at, reverse=True)  # newest first, ties by id
        return found

    def resume_checkpoint(self, checkpoint_id: str, *, now: datetime) -> Checkpoint:
        with self._translated("resuming a checkpoint"):
            reply = self._resume_checkpoint(keys=[self.keys.checkpoint(checkpoint_id)], args=[to_iso(now)])
        if reply[0] == "missing":
            raise NotFound(f"checkpoint {checkpoint_id} does not exist")
        if reply[0] == "resumed":
            raise Conflict(f"checkpoint {checkpoint_id} was already resumed at {reply[1] or '?'}")
        return _checkpoint(_pairs(reply[1:]))

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._translated("deleting a checkpoint"):
            return bool(self._delete_checkpoints(keys=[self.keys.checkpoints], args=[self.keys.prefix, checkpoint_id]))

    def iter_checkpoints(self) -> Iterator[Checkpoint]:
        position = 0
        while True:
            with self._translated("exporting checkpoints"):
                ids = self._client.zrange(self.keys.checkpoints, position, position + CHUNK - 1)
                if not ids:
                    return
                hashes = self._hashes([self.keys.checkpoint(i) for i in ids])
            position += len(ids)
            yield from (_checkpoint(h) for h in hashes if h)

    # -- counts ------------------------------------------------------------------
    def _conversation_counts(self) -> dict[str, int]:
        """messages, summaries, profiles, checkpoints (call inside ``_translated``)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.zcard(self.keys.messages)
        pipe.scard(self.keys.summaries)
        pipe.scard(self.keys.profiles)
        pipe.zcard(self.keys.checkpoints)
        pipe.zcard(f"{self.keys.prefix}:runs")
        messages, summaries, profiles, checkpoints, runs = pipe.execute()
        return {
            "messages": messages, "summaries": summaries, "profiles": profiles, "checkpoints": checkpoints, "runs": runs,
        }

    # -- retention -------------------------------------------------------------
    def _field_of(self, keys: Sequence[str], name: str) -> list[str | None]:
        out: list[str | None] = []
        for chunk in _chunks(keys):
            pipe = self._client.pipeline(transaction=False)
            for key in chunk:
                pipe.hget(key, name)
            out += pipe.execute()
        return out

    def _card(self, keys: Sequence[str]) -> list[int]:
        out: list[int] = []
        for chunk in _chunks(keys):
            pipe = self._client.pipeline(transaction=False)
            for key in chunk:
                pipe.zcard(key)
            out += pipe.execute()
        return out

    def _doomed_sessions(self, plan: PrunePlan) -> list[str]:
        """Ids of the ended sessions ``plan`` removes (or the one session it names, with ``any_status``)."""
        if plan.any_status and plan.session_id is not None:
            return [plan.session_id] if self._client.exists(self.keys.session(plan.session_id)) else []
        if plan.before is None:
            return []
        if plan.session_id is not None:
            candidates = [plan.session_id]
        else:
            members: list[str] = []
            for status in END_STATUSES:
                members += self._client.zrange(self.keys.sessions_by_status(status), 0, -1)
            candidates = [m.split("|", 1)[1] for m in members]
        doomed = []
        for chunk in _chunks(candidates):
            for h in self._hashes([self.keys.session(i) for i in chunk]):
                ended = from_iso(h.get("ended_at") or None) if h else None
                if h and h["status"] in END_STATUSES and ended is not None and ended < plan.before:
                    doomed.append(h["id"])
        return doomed

    def _doomed_messages(self, plan: PrunePlan, doomed_sessions: set[str]) -> list[str]:
        """Ids of the messages ``plan`` removes by its own rules, outside the doomed sessions."""
        chosen: dict[str, None] = {}
        client, k = self._client, self.keys
        if plan.before is not None:
            ids = client.zrangebyscore(k.messages_created, "-inf", f"({lay.micros(plan.before)}")
            sessions = self._field_of([k.message(i) for i in ids], "session_id")
            chosen.update(
                (i, None)
                for i, s in zip(ids, sessions)
                if s is not None and (plan.session_id is None or s == plan.session_id)
            )
        if plan.keep_last_per_session is not None:
            if plan.session_id is not None:
                scope = [plan.session_id]
            else:
                scope = [m.split("|", 1)[1] for m in client.zrange(k.sessions, 0, -1)]
            keep = plan.keep_last_per_session
            cards = self._card([k.session_messages(s) for s in scope])
            over = [(s, n) for s, n in zip(scope, cards) if n > keep]
            for chunk in _chunks(over):
                pipe = client.pipeline(transaction=False)
                for s, n in chunk:
                    pipe.zrange(k.session_messages(s), 0, n - keep - 1)
                for ids in pipe.execute():
                    chosen.update((i, None) for i in ids)
        if not doomed_sessions:
            return list(chosen)
        sessions = self._field_of([k.message(i) for i in chosen], "session_id")
        return [i for i, s in zip(chosen, sessions) if s not in doomed_sessions]

    def _doomed_checkpoints(self, plan: PrunePlan, doomed_sessions: set[str]) -> list[str]:
        """Ids of the checkpoints created before the cutoff, outside the doomed sessions."""
        if plan.before is None:
            return []
        k = self.keys
        ids = self._client.zrangebyscore(k.checkpoints, "-inf", f"({lay.micros(plan.before)}")
        sessions = self._field_of([k.checkpoint(i) for i in ids], "session_id")
        return [
            i
            for i, s in zip(ids, sessions)
            if s is not None and s not in doomed_sessions and (plan.session_id is None or s == plan.session_id)
        ]

    def prune_conversation(self, plan: PrunePlan) -> PruneCounts:
        k = self.keys
        with self._translated("pruning conversations"):
            sessions = self._doomed_sessions(plan)
            doomed = set(sessions)
            if plan.any_status and plan.session_id is not None:
                messages, checkpoints = [], []  # all go with the session: no scan of every message
            else:
                messages = self._doomed_messages(plan, doomed)
                checkpoints = self._doomed_checkpoints(plan, doomed)
            if plan.dry_run:
                held = [
                    sum(self._card([key(s) for s in sessions]))
                    for key in (k.session_messages, k.session_checkpoints, k.tasks_by_session)
                ]
                return PruneCounts(
                    messages=len(messages) + held[0],
                    sessions=len(sessions),
                    checkpoints=len(checkpoints) + held[1],
                    tasks=held[2],
                )
            # Deleted in steps, each one script: the report counts what actually went.
            gone = {"messages": 0, "sessions": 0, "checkpoints": 0, "tasks": 0}
            for chunk in _chunks(messages):
                gone["messages"] += int(
                    self._delete_messages_script(
                        keys=[k.messages, k.messages_created, k.messages_removed, k.messages_removals,
                              k.messages_removals_floor],
                        args=[k.prefix, *chunk],
                    )
                )
            for chunk in _chunks(checkpoints):
                gone["checkpoints"] += int(self._delete_checkpoints(keys=[k.checkpoints], args=[k.prefix, *chunk]))
            for chunk in _chunks(sessions, SESSIONS_PER_SCRIPT):
                n_sessions, n_messages, n_checkpoints, n_tasks = self._delete_sessions(
                    keys=[k.sessions, k.messages, k.messages_created, k.messages_removed, k.summaries, k.checkpoints,
                          k.tasks, k.messages_removals, k.messages_removals_floor],
                    args=[k.prefix, *chunk],
                )
                self._drop_session_runs(chunk)
                gone["sessions"] += int(n_sessions)
                gone["messages"] += int(n_messages)
                gone["checkpoints"] += int(n_checkpoints)
                gone["tasks"] += int(n_tasks)
        return PruneCounts(**gone)
