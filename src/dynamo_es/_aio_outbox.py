"""The async outbox: the same dispatcher rules, awaiting the store and the publisher."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, runtime_checkable

import attrs

from ._aio import aclose_now
from ._aio_stop import AsyncStop
from ._events import StoredEvent
from ._outbox import DispatchReport, PassTally, add_reports, dispatch_steps
from ._steps import run_steps_async

__all__ = ["AsyncOutboxDispatcher", "AsyncOutboxStore"]


@runtime_checkable
class AsyncOutboxStore(Protocol):
    """[`OutboxStore`][dynamo_es.OutboxStore] with awaitable methods (both async stores are one)."""

    def undispatched(self, *, page_size: int = 100) -> AsyncIterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first."""
        ...

    async def count_undispatched(self) -> int:
        """How many events are waiting."""
        ...

    async def mark_dispatched(self, aggregate_id: str, aggregate_type: str, version: int) -> bool:
        """Mark one event dispatched; False when it already was."""
        ...

    async def claim(
        self, aggregate_id: str, aggregate_type: str, version: int, *, owner: str, lease_seconds: float
    ) -> bool:
        """Claim an undispatched event for ``owner``; see [`OutboxStore.claim`][dynamo_es.OutboxStore.claim]."""
        ...


@attrs.define
class AsyncOutboxDispatcher:
    """[`OutboxDispatcher`][dynamo_es.OutboxDispatcher] for an async store: the same claims, order and retries.

    ``publish`` may be a coroutine function (awaited) or a plain function. Call `stop()` from
    the event loop (from another thread: ``loop.call_soon_threadsafe(dispatcher.stop)``).
    The attributes are those of [`OutboxDispatcher`][dynamo_es.OutboxDispatcher].
    """

    store: AsyncOutboxStore
    publish: Callable[[StoredEvent], Any]
    max_attempts: int = attrs.field(default=3, kw_only=True)
    base_delay: float = attrs.field(default=0.05, kw_only=True)
    max_delay: float = attrs.field(default=2.0, kw_only=True)
    page_size: int = attrs.field(default=100, kw_only=True)
    lease_seconds: float = attrs.field(default=30.0, kw_only=True)
    owner: str = attrs.field(factory=lambda: uuid.uuid4().hex, kw_only=True)
    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)

    async def dispatch_once(self) -> DispatchReport:
        """One pass over the outbox, oldest event first."""
        tally = PassTally()
        events = self.store.undispatched(page_size=self.page_size)
        try:
            async for stored in events:
                if self._stopped.is_set:
                    break
                await run_steps_async(dispatch_steps(self, stored, tally))
        finally:
            await aclose_now(events)
        return tally.report()

    async def run(self, *, poll_interval: float = 1.0, stop_when_idle: bool = False) -> DispatchReport:
        """Dispatch until `stop()` (or, with ``stop_when_idle``, until a pass finds nothing)."""
        total = DispatchReport()
        try:
            while not self._stopped.is_set:
                report = await self.dispatch_once()
                total = add_reports(total, report)
                if report.published == 0:
                    if stop_when_idle:
                        break
                    await self._stopped.wait(poll_interval)
        finally:
            self._stopped.clear()  # a stopped dispatcher may run again
        return total

    def stop(self) -> None:
        """Make `run()` return after the event in hand (and end a backoff or poll wait at once)."""
        self._stopped.set()

    async def _pause(self, seconds: float) -> None:
        await self._stopped.wait(seconds)
