"""Pause the cyclic garbage collector while a bulk write builds its records.

Building 100k entries (each an object, its dict and its field set) runs the
collector hundreds of times, and every older-generation pass walks all the
entries built so far: measured, ~40% of what ``store_many`` spends in Python.
None of these objects form cycles, so nothing is lost by collecting after.
Nested and concurrent pauses share one count; the collector comes back, as
it was before the first, when the last ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (reference counting still frees memory)."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
