"""``EngramSaver``: LangGraph's ``BaseCheckpointSaver`` over engram entries, on every backend.

Each thread is one engram namespace (``langgraph/checkpoints/<thread>``, see
:mod:`._names`), so deleting a thread is deleting a namespace. In it::

    c/<ns>/<checkpoint id>              a checkpoint (LangGraph's serde, base64) and its metadata
    h/<ns>                              a copy of the newest checkpoint of a checkpoint namespace
    w/<ns>/<checkpoint id>/<task>/<idx> one pending write

(``<ns>`` and ids escaped as namespace labels are.) Checkpoints are stored whole,
as ``SqliteSaver`` stores them. Values are serialized with LangGraph's own
``JsonPlusSerializer`` (msgpack, never pickle unless the caller passes a serde
that does) and kept in the entry's JSON metadata; the content stays empty, so
the full-text index does no work for them. A checkpoint and its head are
written in one transaction; the head holds the whole newest checkpoint, so reading
a thread's latest state is one read (plus one for its pending writes).

Each saver remembers the heads it has read or written, so a put reads nothing
(the first put to a namespace in a process reads its head once). Two processes
putting checkpoints to the same thread at the same moment race on the head, as
they race on the thread's state in LangGraph itself.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from engram.integrations._extras import require
from engram.integrations._names import RESERVED, decode, encode, escape
from engram.memory import Memory
from engram.models import Entry
from engram.validation import MAX_LIMIT

require("langgraph", "langgraph.checkpoint.base")

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

_PREFIX = (RESERVED, "checkpoints")
_KIND = "lg"  # metadata field naming what an entry holds: checkpoint, head or write


_THREADS = encode(_PREFIX) + "/"  # every thread's namespace starts so


def thread_namespace(thread_id: Any) -> str:
    return encode((*_PREFIX, str(thread_id)))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _ckpt_key(ns: str, checkpoint_id: str) -> str:
    return f"c/{escape(ns)}/{escape(checkpoint_id)}"


def _writes_prefix(ns: str, checkpoint_id: str) -> str:
    return f"w/{escape(ns)}/{escape(checkpoint_id)}/"


def _head_key(ns: str) -> str:
    return f"h/{escape(ns)}"


class EngramSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpointer storing checkpoints and pending writes in an engram ``Memory``.

    ``EngramSaver(memory)`` uses an open ``Memory`` (the caller closes it);
    ``with EngramSaver.from_url("sqlite:///agent.db") as saver:`` opens and
    closes its own. Any engram backend works (SQLite, PostgreSQL, Redis,
    ``memory://``, ``json://``). Async methods run the same code on a thread.
    """

    def __init__(
        self, memory: Memory, *, serde: SerializerProtocol | None = None
    ) -> None:
        super().__init__(serde=serde)
        self.memory = memory
        self._heads: dict[
            tuple[str, str], str
        ] = {}  # (thread namespace, checkpoint ns) -> newest id known

    @classmethod
    @contextmanager
    def from_url(
        cls, url: str, *, serde: SerializerProtocol | None = None
    ) -> Iterator[EngramSaver]:
        """A saver over a ``Memory`` opened on ``url``, closed when the block ends."""
        with Memory(url) as memory:
            yield cls(memory, serde=serde)

    # -- reading -----------------------------------------------------------------
    def _entries(
        self, namespace: str | None, key_prefix: str | None, **metadata: Any
    ) -> list[Entry]:
        """Every entry matching, paged through the store's limit."""
        out: list[Entry] = []
        while True:
            page = self.memory.list(
                namespace=namespace, key_prefix=key_prefix, metadata=metadata or None,
                limit=MAX_LIMIT, offset=len(out),
            )  # fmt: skip
            out += page
            if len(page) < MAX_LIMIT:
                return out

    def _pending_writes(
        self, namespace: str, ns: str, checkpoint_id: str
    ) -> list[tuple[str, str, Any]]:
        rows = [
            e.metadata
            for e in self._entries(namespace, _writes_prefix(ns, checkpoint_id))
        ]
        rows.sort(key=lambda m: writes_sort_key(m["path"], m["task"], m["idx"]))
        return [
            (
                m["task"],
                m["channel"],
                self.serde.loads_typed((m["type"], _unb64(m["data"]))),
            )
            for m in rows
        ]

    def _tuple(
        self, thread_id: str, entry: Entry, writes: list[tuple[str, str, Any]]
    ) -> CheckpointTuple:
        m = entry.metadata
        ns, checkpoint_id, parent = m["ns"], m["id"], m["parent"]
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}},
            checkpoint=self.serde.loads_typed((m["type"], _unb64(m["data"]))),
            metadata=self.serde.loads_typed((m["mtype"], _unb64(m["meta"]))),
            parent_config=None if parent is None else {
                "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}
            },
            pending_writes=writes,
        )  # fmt: skip

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its ``checkpoint_id``), or the thread's newest one."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        namespace = thread_namespace(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            entry = self.memory.get(_ckpt_key(ns, checkpoint_id), namespace=namespace)
        else:
            entry = self.memory.get(_head_key(ns), namespace=namespace)
        if entry is None:
            return None
        checkpoint_id = entry.metadata["id"]
        return self._tuple(
            thread_id, entry, self._pending_writes(namespace, ns, checkpoint_id)
        )

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of one thread (and namespace, when ``config`` names one) or all."""
        if config is None:
            found = [e for e in self._entries(None, None, **{_KIND: "checkpoint"}) if e.namespace.startswith(_THREADS)]  # fmt: skip
        else:
            configurable = config["configurable"]
            ns = configurable.get("checkpoint_ns")
            prefix = "c/" if ns is None else f"c/{escape(ns)}/"
            found = self._entries(thread_namespace(configurable["thread_id"]), prefix)
            wanted_id = get_checkpoint_id(config)
            if wanted_id:
                found = [e for e in found if e.metadata["id"] == wanted_id]
        before_id = None if before is None else get_checkpoint_id(before)
        if before_id:
            found = [e for e in found if e.metadata["id"] < before_id]
        found.sort(key=lambda e: e.metadata["id"], reverse=True)
        yielded = 0
        for entry in found:
            if limit is not None and yielded >= limit:
                return
            thread_id = decode(entry.namespace)[-1]
            tup = self._tuple(thread_id, entry, [])
            if filter and not all(tup.metadata.get(k) == v for k, v in filter.items()):
                continue
            m = entry.metadata
            yield tup._replace(
                pending_writes=self._pending_writes(entry.namespace, m["ns"], m["id"])
            )
            yielded += 1

    # -- writing -----------------------------------------------------------------
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint whole, and move its namespace's head to it when it is the newest."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = configurable.get("checkpoint_ns", "")
        namespace = thread_namespace(thread_id)
        checkpoint_id = checkpoint["id"]
        type_, data = self.serde.dumps_typed(checkpoint)
        full_metadata = get_checkpoint_metadata(config, metadata)
        mtype, meta = self.serde.dumps_typed(full_metadata)
        run_id = full_metadata.get("run_id")
        fields = {
            _KIND: "checkpoint", "ns": ns, "id": checkpoint_id, "parent": configurable.get("checkpoint_id"),
            "type": type_, "data": _b64(data), "mtype": mtype, "meta": _b64(meta),
            "run": None if run_id is None else str(run_id),
        }  # fmt: skip
        items = [
            {
                "key": _ckpt_key(ns, checkpoint_id),
                "content": "",
                "namespace": namespace,
                "metadata": fields,
            }
        ]
        if checkpoint_id > self._head_id(namespace, ns):
            items.append(self._head_item(namespace, fields))
        self.memory.store_many(items, embed=False)
        if len(items) == 2:
            self._heads[(namespace, ns)] = checkpoint_id
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    def _head_id(self, namespace: str, ns: str) -> str:
        """The newest checkpoint id of a namespace ("" for none): remembered, or read once."""
        known = self._heads.get((namespace, ns))
        if known is None:
            head = self.memory.get(_head_key(ns), namespace=namespace)
            known = self._heads[(namespace, ns)] = (
                "" if head is None else head.metadata["id"]
            )
        return known

    @staticmethod
    def _head_item(namespace: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The head of a checkpoint namespace: a copy of its newest checkpoint."""
        return {"key": _head_key(fields["ns"]), "content": "", "namespace": namespace,
                "metadata": {**fields, _KIND: "head"}}  # fmt: skip

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes for a checkpoint: special channels replace, others are kept once."""
        configurable = config["configurable"]
        ns = configurable.get("checkpoint_ns", "")
        checkpoint_id = configurable["checkpoint_id"]
        namespace = thread_namespace(configurable["thread_id"])
        prefix = f"{_writes_prefix(ns, checkpoint_id)}{escape(task_id)}/"
        existing = None
        items = []
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            key = f"{prefix}{idx}"
            if (
                channel not in WRITES_IDX_MAP
            ):  # a retried task must not overwrite what it wrote first
                if existing is None:
                    existing = {e.key for e in self._entries(namespace, prefix)}
                if key in existing:
                    continue
            type_, data = self.serde.dumps_typed(value)
            items.append({"key": key, "content": "", "namespace": namespace, "metadata": {
                _KIND: "write", "ns": ns, "id": checkpoint_id, "task": task_id, "path": task_path, "idx": idx,
                "channel": channel, "type": type_, "data": _b64(data),
            }})  # fmt: skip
        if items:
            self.memory.store_many(items, embed=False)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread, in every checkpoint namespace."""
        namespace = thread_namespace(thread_id)
        self.memory.delete_namespace(namespace)
        self._forget(namespace)

    def _forget(self, namespace: str) -> None:
        for known in [k for k in self._heads if k[0] == namespace]:
            del self._heads[known]

    def _delete_checkpoints(self, doomed: Sequence[Entry]) -> None:
        """Delete checkpoints with their writes, then point each touched head at what is left."""
        touched = set()
        for entry in doomed:
            m = entry.metadata
            for write in self._entries(
                entry.namespace, _writes_prefix(m["ns"], m["id"])
            ):
                self.memory.delete(write.key, namespace=entry.namespace)
            self.memory.delete(entry.key, namespace=entry.namespace)
            touched.add((entry.namespace, m["ns"]))
        for namespace, ns in touched:
            left = self._entries(namespace, f"c/{escape(ns)}/")
            self._heads.pop((namespace, ns), None)
            if left:
                newest = max(left, key=lambda e: e.metadata["id"])
                self.memory.store_many(
                    [self._head_item(namespace, newest.metadata)], embed=False
                )
            else:
                self.memory.delete(_head_key(ns), namespace=namespace)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that the given runs created, in every thread."""
        doomed = [e for run_id in run_ids for e in self._entries(None, None, **{_KIND: "checkpoint", "run": str(run_id)})
                  if e.namespace.startswith(_THREADS)]  # fmt: skip
        self._delete_checkpoints(doomed)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, head and write of one thread into another (in one write)."""
        target = thread_namespace(target_thread_id)
        self._forget(target)
        items = [
            {
                "key": e.key,
                "content": e.content,
                "namespace": target,
                "metadata": e.metadata,
            }
            for e in self._entries(thread_namespace(source_thread_id), None)
        ]
        if items:
            self.memory.store_many(items, embed=False)

    def prune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
    ) -> None:
        """``keep_latest``: keep only each namespace's newest checkpoint (and its writes); ``delete``: all.

        Raises:
            ValueError: an unknown strategy.
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(
                f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'"
            )
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            checkpoints = self._entries(thread_namespace(thread_id), "c/")
            newest: dict[str, str] = {}
            for e in checkpoints:
                ns, cid = e.metadata["ns"], e.metadata["id"]
                newest[ns] = max(newest.get(ns, cid), cid)
            self._delete_checkpoints(
                [e for e in checkpoints if e.metadata["id"] != newest[e.metadata["ns"]]]
            )

    # -- async: the same code on a worker thread -----------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(
            lambda: [*self.list(config, filter=filter, before=before, limit=limit)]
        )
        for tup in found:
            yield tup

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(
            self.put, config, checkpoint, metadata, new_versions
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
    ) -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """Versions as zero-padded text with a random tail, as LangGraph's SQL savers make them."""
        import random

        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"
