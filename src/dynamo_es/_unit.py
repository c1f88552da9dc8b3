"""UnitOfWork: change several aggregates and save them in one transaction, all or nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Self, TypeVar

import attrs

from ._aggregate import AggregateRoot
from ._events import EventMetadata
from ._repository import Repository, check_attempts, check_sync_store, conflict_delay
from ._snapshots import SnapshotStore, SnapshotStrategy
from ._store import CommitResult, EventStore, StreamAppend, Tracking, make_stream_id
from .exceptions import ConcurrencyError, InvalidStreamError

__all__ = ["UnitMembers", "UnitOfWork", "mark_committed"]

A = TypeVar("A", bound=AggregateRoot)
R = TypeVar("R")


class UnitMembers:
    """What both units of work hold: their aggregates by stream, and what a commit appends."""

    _aggregates: dict[str, AggregateRoot]
    snapshot_strategy: SnapshotStrategy | None

    def _member(self, aggregate_class: type[A], aggregate_id: str) -> tuple[str, A | None]:
        """The stream id, and the aggregate already in the unit for it (None if there is none)."""
        stream_id = make_stream_id(aggregate_class.aggregate_type, aggregate_id)
        known = self._aggregates.get(stream_id)
        if known is None or isinstance(known, aggregate_class):
            return stream_id, known
        raise InvalidStreamError(f"{stream_id} is already in this unit of work as a {type(known).__name__}")

    def add(self, *aggregates: AggregateRoot) -> Self:
        """Include aggregates created (or loaded) elsewhere; returns the unit.

        Raises:
            InvalidStreamError: another object of the same stream is already in the unit.
        """
        for aggregate in aggregates:
            stream_id = make_stream_id(aggregate.aggregate_type, aggregate.id)
            if self._aggregates.setdefault(stream_id, aggregate) is not aggregate:
                raise InvalidStreamError(f"{stream_id} is already in this unit of work as another object")
        return self

    @property
    def pending(self) -> list[AggregateRoot]:
        """The aggregates with uncommitted events, in the order they joined the unit."""
        return [aggregate for aggregate in self._aggregates.values() if aggregate.uncommitted_events]

    def appends(self, *, metadata: EventMetadata | None = None) -> list[StreamAppend]:
        """What a commit appends: each pending aggregate's events after its committed version."""
        return [
            StreamAppend(a.id, a.aggregate_type, a.uncommitted_events, a.committed_version, metadata=metadata)
            for a in self.pending
        ]

    def due_snapshots(self, pending: list[AggregateRoot], previous: list[int]) -> list[AggregateRoot]:
        """Which of the committed ``pending`` (once at the ``previous`` versions) the strategy snapshots now."""
        strategy = self.snapshot_strategy
        if strategy is None:
            return []
        return [a for a, before in zip(pending, previous, strict=True) if strategy.should_snapshot(before, a.version)]


def mark_committed(pending: list[AggregateRoot], result: CommitResult) -> CommitResult:
    """Mark ``pending`` committed unless the commit was a redelivery (nothing written); return ``result``."""
    if not result.already_processed:
        for aggregate in pending:
            aggregate.mark_committed()
    return result


@attrs.define
class UnitOfWork(UnitMembers):
    """Aggregates changed together, saved by `commit()` in one transaction of the store.

    Each aggregate keeps its own optimistic concurrency check (the version it was loaded at);
    a conflict on any of them writes nothing and raises `ConcurrencyError` naming every
    conflicting stream. Aggregates may be of different types, stored in the same table.

    ::

        unit = UnitOfWork(store)
        source, target = unit.get(Account, "alice"), unit.get(Account, "bob")
        source.withdraw(10)
        target.deposit(10)
        unit.commit()

    Attributes:
        store: the event store of every aggregate in the unit.
        snapshots: where snapshots live; with it, `get()` starts from the latest usable snapshot.
        snapshot_strategy: when `commit()` snapshots an aggregate it saved (e.g. ``EveryNEvents(100)``),
            by the same rule as [`Repository.save`][dynamo_es.Repository.save].
    """

    store: EventStore = attrs.field(validator=lambda _, __, store: check_sync_store(store))
    snapshots: SnapshotStore | None = attrs.field(default=None, kw_only=True)
    snapshot_strategy: SnapshotStrategy | None = attrs.field(default=None, kw_only=True)
    _aggregates: dict[str, AggregateRoot] = attrs.field(factory=dict, init=False, repr=False)

    @classmethod
    def run(
        cls,
        store: EventStore,
        work: Callable[[UnitOfWork], R],
        *,
        attempts: int = 3,
        metadata: EventMetadata | None = None,
        snapshots: SnapshotStore | None = None,
        snapshot_strategy: SnapshotStrategy | None = None,
    ) -> R:
        """Run ``work(unit)`` on a fresh unit and commit it; on a conflict, do it all again.

        Each attempt loads fresh aggregates, so the work's rules see the other writer's events;
        up to ``attempts`` in all, with a short jittered pause between. Returns what ``work`` returned.

        Raises:
            ConcurrencyError: the last attempt conflicted too.
        """
        check_attempts(attempts)
        attempt = 1
        while True:
            unit = cls(store, snapshots=snapshots, snapshot_strategy=snapshot_strategy)
            result = work(unit)
            try:
                unit.commit(metadata=metadata)
            except ConcurrencyError:
                if attempt >= attempts:
                    raise
            else:
                return result
            time.sleep(conflict_delay(attempt, unit))
            attempt += 1

    def get(self, aggregate_class: type[A], aggregate_id: str) -> A:
        """The aggregate, loaded from the store once per unit (the same object on later calls).

        Raises:
            AggregateNotFoundError: its stream holds no event.
            InvalidStreamError: the stream is in the unit already as an object of another class.
        """
        stream_id, known = self._member(aggregate_class, aggregate_id)
        if known is not None:
            return known
        aggregate = self._repository(aggregate_class).get(aggregate_id)
        self._aggregates[stream_id] = aggregate
        return aggregate

    def _repository(self, aggregate_class: type[A]) -> Repository[A]:
        return Repository(aggregate_class, self.store, snapshots=self.snapshots)

    def commit(self, *, metadata: EventMetadata | None = None, tracking: Tracking | None = None) -> CommitResult:
        """Save every pending aggregate in one transaction; mark them committed.

        ``metadata`` is laid over every event's own. With ``tracking`` (a process manager's
        record of the upstream event it reacts to), a commit whose tracking is recorded already
        writes nothing and returns ``already_processed``; the aggregates keep their events.

        Raises:
            ConcurrencyError: another writer got to one of the streams first (every conflict is named).
            TransactionTooLargeError: more than one transaction holds; nothing was written.
            EventStoreError: the store failed (nothing written, or ``outcome_unknown``).
        """
        pending = self.pending
        previous = [aggregate.committed_version for aggregate in pending]
        result = self.store.append_many(self.appends(metadata=metadata), tracking=tracking)
        mark_committed(pending, result.raise_for_failure())
        if not result.already_processed:
            for aggregate in self.due_snapshots(pending, previous):
                self._repository(type(aggregate)).take_snapshot(aggregate)
        return result
