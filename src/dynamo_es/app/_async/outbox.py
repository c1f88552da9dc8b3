"""The outbox dispatcher: publish stored events reliably, then mark them dispatched."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from ...core.backends.asyncio import AsyncStop, aclose_now
from ...core.steps import run_steps_async
from ...domain.events import StoredEvent
from ...observability import metrics
from ...ports.outbox import AsyncOutboxStore, DispatchReport, PassTally, add_reports, dispatch_steps
from .._checks import check_async_outbox

__all__ = ["BACKLOG_INTERVAL", "AsyncOutboxDispatcher"]

BACKLOG_INTERVAL = 60.0
"""Seconds between two counts of the outbox for the backlog gauge (only with a meter provider set)."""


@attrs.define
class AsyncOutboxDispatcher:
    """Hands undispatched events to ``publish`` and marks each dispatched once it returned.

    Each event is first **claimed** for ``lease_seconds`` (a conditional write), so dispatchers
    running at once split the work instead of publishing everything twice, and a crashed
    dispatcher's claims are taken over when their lease ends. A claim also needs the
    aggregate's previous event dispatched, so each aggregate's events are published in version
    order across dispatchers. Delivery is still **at least once** (a crash between publishing
    and marking, or a publish slower than its lease), so consumers de-duplicate by
    ``StoredEvent.event_id``. When an event fails after its retries, the later events of that
    aggregate wait for the next pass.

    The async dispatcher awaits ``publish`` when it returns an awaitable; call its `stop()`
    from the event loop (from another thread: ``loop.call_soon_threadsafe(dispatcher.stop)``).

    Attributes:
        store: the event store (its outbox index).
        publish: called with each [`StoredEvent`][dynamo_es.StoredEvent]; raising means "not published".
        max_attempts: tries per event in one pass.
        base_delay: seconds: the first backoff ceiling, doubled per try (full jitter).
        max_delay: seconds: the backoff ceiling.
        page_size: outbox items read per request.
        lease_seconds: how long a claim keeps other dispatchers away; longer than a publish takes.
        owner: this dispatcher's identity in its claims (default: random).
    """

    store: AsyncOutboxStore = attrs.field(validator=lambda _, __, store: check_async_outbox(store))
    publish: Callable[[StoredEvent], Any]
    max_attempts: int = attrs.field(default=3, kw_only=True)
    base_delay: float = attrs.field(default=0.05, kw_only=True)
    max_delay: float = attrs.field(default=2.0, kw_only=True)
    page_size: int = attrs.field(default=100, kw_only=True)
    lease_seconds: float = attrs.field(default=30.0, kw_only=True)
    owner: str = attrs.field(factory=lambda: uuid.uuid4().hex, kw_only=True)
    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)
    _backlog_counted_at: float = attrs.field(default=float("-inf"), init=False, repr=False)

    async def dispatch_once(self) -> DispatchReport:
        """One pass over the outbox, oldest event first."""
        tally = PassTally()
        events = self.store.undispatched(page_size=self.page_size)
        try:
            async for stored in events:
                if self._stopped.is_set():
                    break
                await run_steps_async(dispatch_steps(self, stored, tally))
        finally:
            await aclose_now(events)
        metrics.record_outbox(published=tally.published, failed=tally.failed, backlog=await self._backlog())
        return tally.report()

    async def _backlog(self) -> int | None:
        """The outbox's size for the backlog gauge: counted (a paged COUNT of the index) at most once a minute."""
        now = time.monotonic()
        if not metrics.recording() or now - self._backlog_counted_at < BACKLOG_INTERVAL:
            return None
        self._backlog_counted_at = now
        return await self.store.count_undispatched()

    async def run(self, *, poll_interval: float = 1.0, stop_when_idle: bool = False) -> DispatchReport:
        """Dispatch until `stop()` (or, with ``stop_when_idle``, until a pass finds nothing)."""
        total = DispatchReport()
        try:
            while not self._stopped.is_set():
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
