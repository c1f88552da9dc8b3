"""The asyncio backend: a stop flag whose waits end at once, closing an async iterator, awaiting, tasks."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, TypeVar

import attrs

from ...domain.aggregate import AggregateRoot
from ...domain.events import EventHistory, StoredEvent

__all__ = ["PAGE_ITEMS", "AsyncStop", "aclose_now", "awaited", "call", "merged", "replay", "wait_until", "yield_now"]

T = TypeVar("T")
PAGE_ITEMS: int | None = 250
"""Items per Query page of an async load: each page is parsed on the event loop, so it stays short."""
_DONE = object()
_REPLAY_SLICE = 500
"""Events applied between two pauses of an async replay."""


@attrs.define
class AsyncStop:
    """Set by ``stop()``; `wait()` sleeps until a timeout or until the flag is set. Use it on one event loop."""

    _set: bool = attrs.field(default=False, init=False)
    _wake: asyncio.Event | None = attrs.field(default=None, init=False, repr=False)

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._set

    def set(self) -> None:
        """Set the flag and end any wait in progress."""
        self._set = True
        if self._wake is not None:
            self._wake.set()

    def clear(self) -> None:
        """Reset the flag (a runner may run again)."""
        self._set = False

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the flag is set meanwhile (not at all if it is set)."""
        if self._set:
            return
        self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            self._wake = None


async def aclose_now(iterator: object) -> None:
    """Close an async generator now (its ``finally`` runs, e.g. a scan's readers stop), not when it is collected."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def awaited(value: Any) -> Any:
    """``value`` awaited when it is awaitable (an async callback), as it is otherwise."""
    return await value if inspect.isawaitable(value) else value


async def call(function: Callable[..., Any], /, *args: Any) -> None:
    """Call a port that may be sync or async, for its effect (awaited when it returns an awaitable)."""
    await awaited(function(*args))


async def merged(sources: Sequence[Callable[[], AsyncGenerator[T, None]]]) -> AsyncGenerator[T, None]:
    """The items of every source, as they arrive: each source is read by a task of its own.

    One source is read in the caller's task. An error in a source is raised here, once its
    earlier items are out; closing the result cancels every task.
    """
    if len(sources) == 1:
        async with contextlib.aclosing(sources[0]()) as only:
            async for item in only:
                yield item
        return
    items: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * len(sources))
    readers = [asyncio.create_task(_pump(source, items)) for source in sources]
    try:
        finished = 0
        while finished < len(sources):
            item = await items.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                yield item
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


@attrs.frozen
class _Failure:
    error: BaseException


async def _pump(source: Callable[[], AsyncGenerator[Any, None]], items: asyncio.Queue[Any]) -> None:
    try:
        async with contextlib.aclosing(source()) as pages:
            async for item in pages:
                await items.put(item)
    except Exception as error:  # noqa: BLE001  # handed to the reader, which raises it
        await items.put(_Failure(error))
    await items.put(_DONE)


async def replay(aggregate: AggregateRoot, events: Sequence[StoredEvent] | EventHistory) -> None:
    """``aggregate.replay(events)`` in slices, the loop free in between (a long stream holds it for tens of ms)."""
    if isinstance(events, EventHistory):
        parts: Sequence[Sequence[StoredEvent] | EventHistory] = events.split(_REPLAY_SLICE)
    else:
        parts = [events[start : start + _REPLAY_SLICE] for start in range(0, len(events), _REPLAY_SLICE)]
    for index, part in enumerate(parts):
        if index:
            await asyncio.sleep(0)
        aggregate.replay(part)


async def yield_now() -> None:
    """Let the event loop run other tasks once (a call that does no I/O still takes turns)."""
    await asyncio.sleep(0)


async def wait_until(condition: threading.Condition, idle: Callable[[], bool], stop: AsyncStop, seconds: float) -> None:
    """While ``idle()``, wait up to ``seconds`` (less once ``stop`` is set); polled: the loop must not block."""
    if idle() and not stop.is_set():
        await stop.wait(seconds)
