"""The unit of work: change several aggregates and save them in one transaction, all or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from ...core.backends.asyncio import awaited
from ...domain.aggregate import AggregateRoot
from ...domain.events import EventMetadata
from ...exceptions import ConcurrencyError
from ...ports.snapshots import AsyncSnapshotStore, SnapshotStrategy
from ...ports.store import AsyncEventStore, CommitResult, Tracking
from .._checks import check_async_store, check_attempts, check_snapshot_options, conflict_delay
from .._members import UnitMembers, mark_committed
from .repository import AsyncRepository

__all__ = ["AsyncUnitOfWork"]

A = TypeVar("A", bound=AggregateRoot)
R = TypeVar("R")


@attrs.define
class AsyncUnitOfWork(UnitMembers):
    """Aggregates changed together, saved by `commit()` in one transaction of the store.

    Each aggregate keeps its own optimistic concurrency check (the version it was loaded at);
    a conflict on any of them writes nothing and raises `ConcurrencyError` naming every
    conflicting stream. Aggregates may be of different types, stored in the same table.

    ::

        unit = AsyncUnitOfWork(store)
        source, target = await unit.get(Account, "alice"), await unit.get(Account, "bob")
        source.withdraw(10)
        target.deposit(10)
        await unit.commit()

    Attributes:
        store: the event store of every aggregate in the unit.
        snapshots: where snapshots live; with it, `get()` starts from the latest usable snapshot.
        snapshot_strategy: when `commit()` snapshots an aggregate it saved (e.g. ``EveryNEvents(100)``),
            by the same rule as [`AsyncRepository.save`][dynamo_es.aio.AsyncRepository.save].
    """

    store: AsyncEventStore = attrs.field(validator=lambda _, __, store: check_async_store(store))
    snapshots: AsyncSnapshotStore | None = attrs.field(default=None, kw_only=True)
    snapshot_strategy: SnapshotStrategy | None = attrs.field(default=None, kw_only=True)
    _aggregates: dict[str, AggregateRoot] = attrs.field(factory=dict, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        check_snapshot_options(self.snapshots, self.snapshot_strategy)

    @classmethod
    async def run(
        cls,
        store: AsyncEventStore,
        work: Callable[[AsyncUnitOfWork], Awaitable[R]],
        *,
        attempts: int = 3,
        metadata: EventMetadata | None = None,
        snapshots: AsyncSnapshotStore | None = None,
        snapshot_strategy: SnapshotStrategy | None = None,
    ) -> R:
        """Run ``work(unit)`` on a fresh unit and commit it; on a conflict, do it all again.

        The async unit awaits ``work`` when it returns an awaitable (a plain function works too).
        Each attempt loads fresh aggregates, so the work's rules see the other writer's events;
        up to ``attempts`` in all, with a short jittered pause between. Returns what ``work`` returned.

        Raises:
            ConcurrencyError: the last attempt conflicted too.
        """
        check_attempts(attempts)
        attempt = 1
        while True:
            unit = cls(store, snapshots=snapshots, snapshot_strategy=snapshot_strategy)
            result: R = await awaited(work(unit))
            try:
                await unit.commit(metadata=metadata)
            except ConcurrencyError:
                if attempt >= attempts:
                    raise
            else:
                return result
            await asyncio.sleep(conflict_delay(attempt, unit))
            attempt += 1

    async def get(self, aggregate_class: type[A], aggregate_id: str) -> A:
        """The aggregate, loaded from the store once per unit (the same object on later calls).

        Raises:
            AggregateNotFoundError: its stream holds no event.
            InvalidStreamError: the stream is in the unit already as an object of another class.
        """
        stream_id, known = self._member(aggregate_class, aggregate_id)
        if known is not None:
            return known
        aggregate = await self._repository(aggregate_class).get(aggregate_id)
        self._aggregates[stream_id] = aggregate
        return aggregate

    def _repository(self, aggregate_class: type[A]) -> AsyncRepository[A]:
        return AsyncRepository(aggregate_class, self.store, snapshots=self.snapshots)

    async def commit(self, *, metadata: EventMetadata | None = None, tracking: Tracking | None = None) -> CommitResult:
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
        result = await self.store.append_many(self.appends(metadata=metadata), tracking=tracking)
        mark_committed(pending, result.raise_for_failure())
        if not result.already_processed:
            for aggregate in self.due_snapshots(pending, previous):
                await self._repository(type(aggregate)).take_snapshot(aggregate)
        return result
