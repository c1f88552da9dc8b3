"""The outbox: publish stored events reliably, then mark them dispatched."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import attrs

from ..core.retry import backoff_delay
from ..core.steps import Steps, Use
from ..domain.events import StoredEvent
from ..observability import tracing
from ..observability.logs import log_fields

__all__ = [
    "AsyncOutboxStore",
    "DispatchReport",
    "DispatcherPorts",
    "OutboxStore",
    "PassTally",
    "add_reports",
    "dispatch_steps",
]

log = logging.getLogger("dynamo_es.outbox")


@runtime_checkable
class OutboxStore(Protocol):
    """A store that keeps the dispatch status of its events (both stores do)."""

    def undispatched(self, *, page_size: int = 100) -> Iterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first."""
        ...

    def count_undispatched(self) -> int:
        """How many events are waiting."""
        ...

    def mark_dispatched(self, aggregate_id: str, aggregate_type: str, version: int) -> bool:
        """Mark one event dispatched; False when it already was."""
        ...

    def claim(self, aggregate_id: str, aggregate_type: str, version: int, *, owner: str, lease_seconds: float) -> bool:
        """Claim an undispatched event for ``owner`` for ``lease_seconds``; False when another holds it.

        A claim also needs the aggregate's previous event dispatched, so dispatchers keep order.
        """
        ...


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


@attrs.frozen
class DispatchReport:
    """What one pass over the outbox did."""

    published: int = 0
    failed: int = 0
    deferred: int = 0
    """Events left for later because an earlier event of the same aggregate failed or is another's."""
    claimed_elsewhere: int = 0
    """Events another dispatcher holds (or whose predecessor is not dispatched yet)."""


@attrs.define
class PassTally:
    """What one pass did so far, and which aggregates it must leave alone."""

    published: int = 0
    failed: int = 0
    deferred: int = 0
    elsewhere: int = 0
    blocked: set[str] = attrs.field(factory=set)

    def report(self) -> DispatchReport:
        """The pass's `DispatchReport`."""
        return DispatchReport(self.published, self.failed, self.deferred, self.elsewhere)


def add_reports(total: DispatchReport, report: DispatchReport) -> DispatchReport:
    """Two passes' reports added up."""
    return DispatchReport(*(a + b for a, b in zip(attrs.astuple(total), attrs.astuple(report), strict=True)))


class DispatcherPorts(Protocol):
    """What the dispatch rules use of a dispatcher (sync or async): its store, settings and callbacks."""

    @property
    def store(self) -> OutboxStore | AsyncOutboxStore:
        """The store whose outbox is dispatched."""
        ...

    @property
    def publish(self) -> Callable[[StoredEvent], Any]:
        """Publishes one event (raising means "not published"); may return an awaitable."""
        ...

    owner: str
    lease_seconds: float
    max_attempts: int
    base_delay: float
    max_delay: float

    def _pause(self, seconds: float) -> Any:
        """Wait ``seconds`` (less once stopped); may be a coroutine function."""
        ...


def dispatch_steps(dispatcher: DispatcherPorts, stored: StoredEvent, tally: PassTally) -> Steps[None]:
    """Claim, publish and mark one event, by the rules of `OutboxDispatcher` (sync or async ports)."""
    if stored.stream_id in tally.blocked:
        tally.deferred += 1
        return
    key = (stored.aggregate_id, stored.aggregate_type, stored.version)
    store = dispatcher.store
    if not (yield Use(store.claim, *key, owner=dispatcher.owner, lease_seconds=dispatcher.lease_seconds)):
        tally.blocked.add(stored.stream_id)  # another dispatcher has this aggregate now
        tally.elsewhere += 1
        return
    if (yield from _publish_steps(dispatcher, stored)):
        yield Use(store.mark_dispatched, *key)
        tally.published += 1
        return
    tally.blocked.add(stored.stream_id)
    tally.failed += 1
    # give the claim up at once: the next pass, or another dispatcher, retries
    yield Use(store.claim, *key, owner=dispatcher.owner, lease_seconds=0)


def _publish_steps(dispatcher: DispatcherPorts, stored: StoredEvent) -> Steps[bool]:
    """Publish ``stored`` (with retries) in a PRODUCER span that continues the trace it was written in."""
    with tracing.handling("dynamo_es.publish", "outbox", stored, producer=True) as span:
        published = yield from _publish_attempts(dispatcher, stored)
        tracing.set_attributes(span, {"dynamo_es.published": published})
    return published


def _publish_attempts(dispatcher: DispatcherPorts, stored: StoredEvent) -> Steps[bool]:
    attempts = dispatcher.max_attempts
    for attempt in range(1, attempts + 1):
        try:
            yield Use(dispatcher.publish, stored)
        except Exception:
            log.warning(
                "publishing %s v%d (%s) failed, attempt %d of %d",
                stored.stream_id, stored.version, stored.event_type, attempt, attempts,
                exc_info=True, extra=log_fields(stored.stream_id, stored.version, attempt=attempt),
            )  # fmt: skip
            if attempt < attempts:
                yield Use(dispatcher._pause, backoff_delay(attempt - 1, dispatcher.base_delay, dispatcher.max_delay))
        else:
            return True
    return False
