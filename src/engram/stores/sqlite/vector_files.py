"""HNSW graphs saved next to a database, so a big namespace is indexed once, not per process.

Building an HNSW graph costs ~0.5-1.3 ms per vector on 2 cores: a namespace
of 100k vectors took ~2 minutes on the first search of every new process
(every CLI call). So a store saves each graph it builds in the directory
``<database>.vectors/``, as two files per version::

    <key>-<hwm>.json   what the graph holds: format, store id, namespace, model,
                       dimensions, live count, deleted labels, hwm
    <key>-<hwm>.hnsw   the graph itself (hnswlib's file format)

``<key>`` is a hash of the namespace; ``<hwm>`` (high-water mark) is the
sequence number of the store's vector change log the graph reflects: every
change up to it is in the graph, later ones may be too (replaying a change
is idempotent: it re-reads the vector as it is now). A process loads the
newest valid version, replays the changes logged after its mark, and goes on
from there; when the log no longer reaches back that far it rebuilds.

No lock is needed between processes. A version is written to temporary
names, the description first, then renamed into place; the graph's rename
commits it, and older versions are deleted afterwards. Every version is
consistent with its own mark, so the last writer wins and a reader that
loses a race (its version deleted under it) takes the next one or rebuilds.
A version is trusted only when its store id (a random id kept in the
database), namespace, model and dimensions match, and hnswlib reads it with
the live count the description promises.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from hashlib import blake2b
from pathlib import Path
from typing import Any

from engram.search.vector import HNSW_CONNECTIVITY, HNSW_EXPANSION_ADD, VectorIndex
from engram.stores.base import VectorModel

FORMAT = 1
_VERSION = re.compile(r"^([0-9a-f]{20})-(\d{16})\.hnsw$")
_STALE_TEMP_S = 3600.0  # a temporary file this old was left by a writer that died


def namespace_key(namespace: str) -> str:
    return blake2b(namespace.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def save_threshold(size: int) -> int:
    """Changes after which re-saving a graph of ``size`` vectors pays for itself.

    Writing the file costs about as much as replaying a few hundred inserts
    at 100k vectors (~1.7 KB per vector written vs ~1 ms per insert), so a
    process saves once the changes it applied exceed ~n/256 (and 256); below
    that, the next process replaying them costs less than the write.
    """
    return max(256, size // 256)


class VectorFiles:
    """The saved graphs of one database, in ``directory``."""

    def __init__(self, directory: Path, store_id: str):
        self.directory = directory
        self.store_id = store_id

    def _stem(self, key: str, hwm: int) -> str:
        return f"{key}-{hwm:016d}"

    def versions(self, namespace: str) -> list[int]:
        """Marks of the saved versions of ``namespace``, newest first."""
        key = namespace_key(namespace)
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found = [int(m.group(2)) for name in names if (m := _VERSION.match(name)) and m.group(1) == key]
        return sorted(found, reverse=True)

    def load(
        self, namespace: str, model: VectorModel, *, exact_max: int, max_hwm: int
    ) -> tuple[VectorIndex, int] | None:
        """The newest valid saved graph of ``namespace`` and its mark, or None.

        Versions marked beyond ``max_hwm`` (the newest change the database
        has logged) belong to a database that was replaced, and are skipped.
        """
        key = namespace_key(namespace)
        for _attempt in range(2):
            vanished = False
            for hwm in self.versions(namespace):
                stem = self.directory / self._stem(key, hwm)
                try:
                    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
                except FileNotFoundError:
                    vanished = True
                    continue
                except (OSError, ValueError):
                    continue
                if not self._describes(meta, namespace, model, hwm) or hwm > max_hwm:
                    continue
                graph = stem.with_suffix(".hnsw")
                if not graph.exists():
                    vanished = True
                    continue
                try:
                    return VectorIndex.load(graph, meta, exact_max=exact_max), hwm
                except (RuntimeError, ValueError, OSError, KeyError, TypeError):
                    vanished = vanished or not graph.exists()
                    continue  # unreadable (or deleted while reading): an older version, or a rebuild
            if not vanished:
                return None
        return None

    def _describes(self, meta: Any, namespace: str, model: VectorModel, hwm: int) -> bool:
        return (
            isinstance(meta, dict)
            and meta.get("format") == FORMAT
            and meta.get("store_id") == self.store_id
            and meta.get("namespace") == namespace
            and meta.get("model") == model.name
            and meta.get("dimensions") == model.dimensions
            and meta.get("hwm") == hwm
        )

    def save(self, namespace: str, index: VectorIndex, hwm: int, model: VectorModel) -> bool:
        """Write ``index`` (an HNSW one) as the version ``hwm`` of ``namespace``; False when it cannot.

        A failure to write (read-only directory, full disk) is not an error:
        the graph is simply rebuilt by the next process that needs it.
        """
        key = namespace_key(namespace)
        stem = self._stem(key, hwm)
        token = f"{os.getpid()}.{secrets.token_hex(4)}"
        tmp_graph = self.directory / f".{stem}.{token}.hnsw.tmp"
        tmp_meta = self.directory / f".{stem}.{token}.json.tmp"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as the database
            info = index.save(tmp_graph)
            meta = {
                "format": FORMAT,
                "store_id": self.store_id,
                "namespace": namespace,
                "model": model.name,
                "dimensions": model.dimensions,
                "hwm": hwm,
                "hnsw": {"M": HNSW_CONNECTIVITY, "ef_construction": HNSW_EXPANSION_ADD},
                "saved_at": time.time(),
                **info,
            }
            with open(tmp_meta, "w", encoding="utf-8") as f:
                json.dump(meta, f)
                f.flush()
                os.fsync(f.fileno())
            with open(tmp_graph, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp_meta, self.directory / f"{stem}.json")
            os.replace(tmp_graph, self.directory / f"{stem}.hnsw")  # commits the version
        except (OSError, RuntimeError, ValueError):
            for tmp in (tmp_graph, tmp_meta):
                tmp.unlink(missing_ok=True)
            return False
        self._drop_older(key, hwm)
        return True

    def _drop_older(self, key: str, hwm: int) -> None:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        now = time.time()
        for name in names:
            m = _VERSION.match(name)
            if m and m.group(1) == key and int(m.group(2)) < hwm:
                for suffix in (".hnsw", ".json"):  # the graph first: a version without it is never read
                    (self.directory / f"{key}-{m.group(2)}{suffix}").unlink(missing_ok=True)
            elif name.startswith(f".{key}-") and name.endswith(".tmp"):
                path = self.directory / name
                try:
                    if now - path.stat().st_mtime > _STALE_TEMP_S:
                        path.unlink(missing_ok=True)
                except OSError:
                    pass

    def remove(self, namespace: str | None = None) -> None:
        """Delete the saved graphs of ``namespace`` (None: of every namespace)."""
        key = None if namespace is None else namespace_key(namespace)
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            m = _VERSION.match(name) or re.match(r"^([0-9a-f]{20})-(\d{16})\.json$", name)
            if m and (key is None or m.group(1) == key):
                (self.directory / name).unlink(missing_ok=True)
        if namespace is None:
            try:
                self.directory.rmdir()  # only when nothing else is left in it
            except OSError:
                pass
