"""Pausing Python's cyclic garbage collector while a page of events is decoded.

Decoding allocates a few objects per event, all of which survive the page (no cycles); the
collector would walk them again and again as the page grows, which makes long loads cost more
per event than short ones. Reference counting still frees everything as usual.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["collection_paused"]


class _Pause:
    """Nested, thread-safe pauses: the collector is re-enabled by the last one out, if we disabled it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._disabled_by_us = False

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._disabled_by_us = gc.isenabled()
                gc.disable()
            self._depth += 1

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._disabled_by_us:
                gc.enable()


_PAUSE = _Pause()


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Within the block, no automatic cyclic collection runs (in any thread)."""
    _PAUSE.enter()
    try:
        yield
    finally:
        _PAUSE.leave()
