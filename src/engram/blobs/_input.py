"""What ``put`` accepts, read as chunks: bytes, a binary file-like object, or a path.

Nothing here holds a whole input in memory beyond what the caller already
holds (bytes): files are read a chunk at a time.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from engram.errors import InvalidInput

CHUNK = 1 << 20  # 1 MiB: reads, writes, database rows


class Source:
    """One input to ``put``: its chunks, its size when known up front, a name it suggests."""

    def __init__(self, data: Any) -> None:
        self.size: int | None = None
        self.name: str | None = None
        self.regular_file: BinaryIO | None = None  # a path's open file, when it is a regular file
        self._owned: Any = None
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._view = memoryview(data).cast("B")
            self.size = self._view.nbytes
            self._file: Any = None
        elif isinstance(data, (str, os.PathLike)):
            path = Path(data)
            try:
                self._owned = self._file = path.open("rb")
            except IsADirectoryError:
                raise InvalidInput(f"{path} is a directory: put() takes a file, bytes or a binary stream") from None
            except OSError as exc:
                raise InvalidInput(
                    f"cannot read {path}: {exc.strerror or exc} (put() takes a path, bytes or a binary stream; "
                    "pass text as text.encode())"
                ) from None
            info = os.fstat(self._file.fileno())
            self.size = info.st_size
            self.name = path.name
            if stat.S_ISREG(info.st_mode):
                self.regular_file = self._file
        elif callable(getattr(data, "read", None)):
            self._file = data
            raw_name = getattr(data, "name", None)
            if isinstance(raw_name, str) and not raw_name.startswith("<"):  # not "<stdin>"
                self.name = os.path.basename(raw_name) or None
        else:
            raise InvalidInput(
                f"put() takes bytes, a binary file-like object or a path, not {type(data).__name__}"
            )

    def chunks(self) -> Iterator[bytes | memoryview]:
        if self._file is None:
            for start in range(0, self._view.nbytes, CHUNK):
                yield self._view[start : start + CHUNK]
            return
        read = getattr(self._file, "read1", None) or self._file.read
        while True:
            chunk = read(CHUNK)
            if not chunk:
                return
            if isinstance(chunk, str):
                raise InvalidInput("the stream gave text: open the file in binary mode ('rb') to put it")
            yield chunk

    def unchanged(self) -> bool:
        """Whether a path's file still has the size it was opened with (nothing was appended or cut)."""
        return self.regular_file is None or os.fstat(self.regular_file.fileno()).st_size == self.size

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
