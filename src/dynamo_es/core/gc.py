"""Pausing Python's cyclic garbage collector while a page of events is decoded.

Decoding allocates a few objects per event, all of which survive the page (no cycles); the
collector would walk them again and again as the page grows, which makes long loads cost more
per event than short ones. Reference counting still frees everything as usual.

Pauses nest, across threads and tasks. A busy service whose loads overlap could keep the
collector off for good, so a pause that has lasted `LONGEST_PAUSE` seconds runs one full
collection when the next pause begins: cycles made meanwhile are still freed.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["LONGEST_PAUSE", "collection_paused"]

LONGEST_PAUSE = 10.0
"""Seconds the collector may stay off without a break, however the pauses overlap.

Longer than one long load (50,000 events take 2-3 s on DynamoDB Local): a full collection in
the middle of a load holds an event loop for as long as it walks every live object (150 ms in
bench_loop.py at 2 s). Only loads that overlap for this long, which would starve the
collector, trigger it.
"""


class _Pause:
    """Nested, thread-safe pauses: the collector is re-enabled by the last one out, if we disabled it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._disabled_by_us = False
        self._clock = clock
        self._since = 0.0

    def enter(self) -> None:
        overdue = False
        with self._lock:
            if self._depth == 0:
                self._disabled_by_us = gc.isenabled()
                self._since = self._clock()
                gc.disable()
            elif self._disabled_by_us and self._clock() - self._since > LONGEST_PAUSE:
                overdue, self._since = True, self._clock()
            self._depth += 1
        if overdue:
            gc.collect()  # outside the lock: a finalizer it runs may pause again

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
