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

__all__ = ["DispatchReport", "OutboxDispatcher", "OutboxStore"]

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
        published = failed = deferred = elsewhere = 0
        blocked: set[str] = set()
        for stored in self.store.undispatched(page_size=self.page_size):
            if self._stopped.is_set():
                break
            if stored.stream_id in blocked:
                deferred += 1
                continue
            if not self.store.claim(
                stored.aggregate_id, stored.aggregate_type, stored.version,
                owner=self.owner, lease_seconds=self.lease_seconds,
            ):  # fmt: skip
                blocked.add(stored.stream_id)  # another dispatcher has this aggregate now
                elsewhere += 1
                continue
            if self._publish_with_retries(stored):
                self.store.mark_dispatched(stored.aggregate_id, stored.aggregate_type, stored.version)
                published += 1
            else:
                blocked.add(stored.stream_id)
                failed += 1
                self.store.claim(  # give the claim up at once: the next pass, or another dispatcher, retries
                    stored.aggregate_id, stored.aggregate_type, stored.version, owner=self.owner, lease_seconds=0
                )
        return DispatchReport(published, failed, deferred, elsewhere)

    def run(self, *, poll_interval: float = 1.0, stop_when_idle: bool = False) -> DispatchReport:
        """Dispatch until `stop()` (or, with ``stop_when_idle``, until a pass finds nothing)."""
        total = DispatchReport()
        try:
            while not self._stopped.is_set():
                report = self.dispatch_once()
                total = DispatchReport(
                    total.published + report.published,
                    total.failed + report.failed,
                    total.deferred + report.deferred,
                    total.claimed_elsewhere + report.claimed_elsewhere,
                )
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

    def _publish_with_retries(self, stored: StoredEvent) -> bool:
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.publish(stored)
                return True
            except Exception:
                log.warning(
                    "publishing %s v%d (%s) failed, attempt %d of %d",
                    stored.stream_id, stored.version, stored.event_type, attempt, self.max_attempts,
                    exc_info=True,
                )  # fmt: skip
                if attempt < self.max_attempts:
                    self._stopped.wait(backoff_delay(attempt - 1, self.base_delay, self.max_delay))
        return False
