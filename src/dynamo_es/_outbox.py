"""The outbox: publish stored events reliably, then mark them dispatched."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

import attrs

from ._events import StoredEvent
from ._retry import backoff_delay
from ._steps import Steps, Use, run_steps

__all__ = [
    "DispatchReport",
    "OutboxDispatcher",
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
class OutboxDispatcher:
    """Hands undispatched events to ``publish`` and marks each dispatched once it returned.

    Each event is first **claimed** for ``lease_seconds`` (a conditional write), so dispatchers
    running at once split the work instead of publishing everything twice, and a crashed
    dispatcher's claims are taken over when their lease ends. A claim also needs the
    aggregate's previous event dispatched, so each aggregate's events are published in version
    order across dispatchers. Delivery is still **at least once** (a crash between publishing
    and marking, or a publish slower than its lease), so consumers de-duplicate by
    ``StoredEvent.event_id``. When an event fails after its retries, the later events of that
    aggregate wait for the next pass.

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

    store: OutboxStore
    publish: Callable[[StoredEvent], Any]
    max_attempts: int = attrs.field(default=3, kw_only=True)
    base_delay: float = attrs.field(default=0.05, kw_only=True)
    max_delay: float = attrs.field(default=2.0, kw_only=True)
    page_size: int = attrs.field(default=100, kw_only=True)
    lease_seconds: float = attrs.field(default=30.0, kw_only=True)
    owner: str = attrs.field(factory=lambda: uuid.uuid4().hex, kw_only=True)
    _stopped: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)

    def dispatch_once(self) -> DispatchReport:
        """One pass over the outbox, oldest event first."""
        tally = PassTally()
        for stored in self.store.undispatched(page_size=self.page_size):
            if self._stopped.is_set():
                break
            run_steps(dispatch_steps(self, stored, tally))
        return tally.report()

    def run(self, *, poll_interval: float = 1.0, stop_when_idle: bool = False) -> DispatchReport:
        """Dispatch until `stop()` (or, with ``stop_when_idle``, until a pass finds nothing)."""
        total = DispatchReport()
        try:
            while not self._stopped.is_set():
                report = self.dispatch_once()
                total = add_reports(total, report)
                if report.published == 0:
                    if stop_when_idle:
                        break
                    self._stopped.wait(poll_interval)
        finally:
            self._stopped.clear()  # a stopped dispatcher may run again
        return total

    def stop(self) -> None:
        """Make `run()` return after the event in hand; safe from another thread."""
        self._stopped.set()

    def _pause(self, seconds: float) -> None:
        self._stopped.wait(seconds)


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


def dispatch_steps(dispatcher: Any, stored: StoredEvent, tally: PassTally) -> Steps[None]:
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


def _publish_steps(dispatcher: Any, stored: StoredEvent) -> Steps[bool]:
    attempts = dispatcher.max_attempts
    for attempt in range(1, attempts + 1):
        try:
            yield Use(dispatcher.publish, stored)
        except Exception:
            log.warning(
                "publishing %s v%d (%s) failed, attempt %d of %d",
                stored.stream_id, stored.version, stored.event_type, attempt, attempts,
                exc_info=True,
            )  # fmt: skip
            if attempt < attempts:
                yield Use(dispatcher._pause, backoff_delay(attempt - 1, dispatcher.base_delay, dispatcher.max_delay))
        else:
            return True
    return False
