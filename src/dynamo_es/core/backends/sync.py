"""The sync backend: a thread-safe stop flag, closing an iterator, a value as it is, threads."""

from __future__ import annotations

import inspect
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

import attrs

from ...domain.aggregate import AggregateRoot
from ...domain.events import EventHistory, StoredEvent
from ...exceptions import ConfigurationError

__all__ = ["PAGE_ITEMS", "Stop", "awaited", "call", "close_now", "merged", "replay", "wait_until", "yield_now"]

PAGE_ITEMS: int | None = None
"""Items per Query page of a sync load: None, DynamoDB's own 1 MB pages (fewest requests)."""
_DONE = object()

T = TypeVar("T")


@attrs.define
class Stop:
    """Set by ``stop()`` from any thread; `wait()` sleeps until a timeout or until the flag is set."""

    _event: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    def set(self) -> None:
        """Set the flag and end any wait in progress."""
        self._event.set()

    def clear(self) -> None:
        """Reset the flag (a runner may run again)."""
        self._event.clear()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the flag is set meanwhile (not at all if it is set)."""
        self._event.wait(seconds)


def close_now(iterator: object) -> None:
    """Close a generator now (its ``finally`` runs, e.g. a scan's readers stop), not when it is collected."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def awaited(value: T) -> T:
    """``value`` itself: a sync runner's callbacks return plain values.

    Raises:
        ConfigurationError: ``value`` is awaitable (an ``async def`` callback), which a sync runner
            would drop unawaited.
    """
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()  # no "never awaited" warning: the error says it all
        raise ConfigurationError(
            "command",
            "an async function was given to a sync runner; use the async one (dynamo_es.aio) or a plain function",
        )
    return value


def call(function: Callable[..., Any], /, *args: Any) -> None:
    """Call a port for its effect (one that returns an awaitable is refused, as by `awaited`)."""
    awaited(function(*args))


def merged(sources: Sequence[Callable[[], Iterator[T]]]) -> Generator[T, None, None]:
    """The items of every source, as they arrive: each source is read by a thread of its own.

    One source is read in the caller's thread. An error in a source is raised here, once its
    earlier items are out; closing the result stops every thread at its next item.
    """
    if len(sources) == 1:
        yield from sources[0]()
        return
    items: queue.Queue[Any] = queue.Queue(maxsize=2 * len(sources))
    stop = threading.Event()
    for source in sources:
        threading.Thread(target=_pump, args=(source, items, stop), daemon=True).start()
    try:
        finished = 0
        while finished < len(sources):
            item = items.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                yield item
    finally:
        stop.set()


@attrs.frozen
class _Failure:
    error: BaseException


def _pump(source: Callable[[], Iterator[Any]], items: queue.Queue[Any], stop: threading.Event) -> None:
    try:
        for item in source():
            if not _put(items, item, stop):
                return
    except Exception as error:  # noqa: BLE001  # handed to the reader, which raises it
        _put(items, _Failure(error), stop)
    _put(items, _DONE, stop)


def _put(items: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Hand ``item`` to the reader; False once the reader has gone (no thread blocks on a full queue)."""
    while not stop.is_set():
        try:
            items.put(item, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


def replay(aggregate: AggregateRoot, events: Sequence[StoredEvent] | EventHistory) -> None:
    """``aggregate.replay(events)``, at once."""
    aggregate.replay(events)


def yield_now() -> None:
    """Nothing: a thread needs no turn (the async twin yields to the event loop)."""


def wait_until(condition: threading.Condition, idle: Callable[[], bool], stop: Stop, seconds: float) -> None:
    """While ``idle()``, wait up to ``seconds`` on ``condition`` (its notify, or ``stop``'s, ends it at once)."""
    with condition:
        if idle() and not stop.is_set():
            condition.wait(seconds)
