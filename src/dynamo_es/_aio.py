"""The asyncio API's core: the async store protocol, repository and unit of work (no I/O of their own).

Aggregates stay synchronous (they do no I/O); only stores, repositories and runners await.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from ._aggregate import AggregateRoot
from ._events import EventMetadata, StoredEvent
from ._repository import SNAPSHOT_ERRORS, capture, check_attempts, check_class, conflict_delay, restore
from ._serialization import EventSerializer
from ._snapshots import Snapshot, SnapshotStrategy
from ._store import AppendResult, CommitResult, StreamAppend, Tracking, check_version
from ._unit import UnitMembers, mark_committed
from .exceptions import AggregateNotFoundError, ConcurrencyError, ConfigurationError

__all__ = ["AsyncEventStore", "AsyncRepository", "AsyncSnapshotStore", "AsyncUnitOfWork"]

log = logging.getLogger("dynamo_es")

A = TypeVar("A", bound=AggregateRoot)
R = TypeVar("R")


@runtime_checkable
class AsyncEventStore(Protocol):
    """[`EventStore`][dynamo_es.EventStore] with awaitable methods: the same semantics, non-blocking."""

    serializer: EventSerializer

    async def append(
        self,
        aggregate_id: str,
        aggregate_type: str,
        events: Sequence[Any],
        expected_version: int,
        *,
        metadata: EventMetadata | None = None,
    ) -> AppendResult:
        """Append events after ``expected_version`` (0 for a new stream)."""
        ...

    async def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams in one transaction: all or nothing."""
        ...

    async def load(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version`` (inclusive), in order."""
        ...

    async def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        ...


@runtime_checkable
class AsyncSnapshotStore(Protocol):
    """[`SnapshotStore`][dynamo_es.SnapshotStore] with awaitable methods."""

    async def load_latest(
        self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None
    ) -> Snapshot | None:
        """The newest snapshot at or below ``max_version``, or None."""
        ...

    async def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot``."""
        ...


async def aclose_now(iterator: object) -> None:
    """Close an async generator now (its ``finally`` runs, e.g. a scan's readers stop), not when it is collected."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def check_async_store(store: object) -> None:
    """Refuse a sync store where an async one is needed, naming both (awaiting its results would fail later).

    Raises:
        ConfigurationError: ``store.load`` is not a coroutine function.
    """
    if not inspect.iscoroutinefunction(getattr(store, "load", None)):
        raise ConfigurationError(
            "store",
            f"{type(store).__name__} is not an async event store; use AsyncDynamoDBEventStore "
            "(dynamo_es.dynamodb.aio) or AsyncInMemoryEventStore (dynamo_es.aio)",
        )


@attrs.define
class AsyncRepository(Generic[A]):
    """[`Repository`][dynamo_es.Repository] for an [`AsyncEventStore`][dynamo_es.aio.AsyncEventStore].

    With ``snapshots`` (and a ``snapshot_strategy``), it loads from the latest usable snapshot
    and takes snapshots after saves, by the same rules as the sync repository.
    """

    aggregate_class: type[A]
    store: AsyncEventStore = attrs.field(validator=lambda _, __, store: check_async_store(store))
    snapshots: AsyncSnapshotStore | None = attrs.field(default=None, kw_only=True)
    snapshot_strategy: SnapshotStrategy | None = attrs.field(default=None, kw_only=True)

    async def get(self, aggregate_id: str, *, version: int | None = None) -> A:
        """The aggregate rebuilt from its events; with ``version``, as it was then.

        Raises:
            AggregateNotFoundError: the stream has no event (up to ``version``).
        """
        if version is not None:
            check_version("version", version, minimum=1)
        aggregate_type = self.aggregate_class.aggregate_type
        aggregate = await self._from_snapshot(aggregate_id, version)
        if aggregate is not None:
            after = aggregate.version + 1
            aggregate.replay(
                await self.store.load(aggregate_id, aggregate_type, from_version=after, to_version=version)
            )
            return aggregate
        events = await self.store.load(aggregate_id, aggregate_type, to_version=version)
        if not events:
            raise AggregateNotFoundError(aggregate_type, aggregate_id)
        aggregate = self.aggregate_class(aggregate_id)
        aggregate.replay(events)
        return aggregate

    async def save(self, aggregate: A, *, metadata: EventMetadata | None = None) -> int:
        """Append the aggregate's uncommitted events; return its new version.

        Raises:
            ConcurrencyError: another writer appended first; reload and retry the command.
            EventStoreError: the store failed (the aggregate keeps its uncommitted events).
        """
        check_class(self.aggregate_class, aggregate)
        if not aggregate.uncommitted_events:
            return aggregate.version
        result = await self.store.append(
            aggregate.id,
            aggregate.aggregate_type,
            aggregate.uncommitted_events,
            aggregate.committed_version,
            metadata=metadata,
        )
        result.raise_for_failure()
        aggregate.mark_committed()
        previous = result.expected_version
        if self.snapshot_strategy is not None and self.snapshot_strategy.should_snapshot(previous, result.new_version):
            await self.take_snapshot(aggregate)
        return result.new_version

    async def update(
        self,
        aggregate_id: str,
        command: Callable[[A], Any],
        *,
        attempts: int = 3,
        metadata: EventMetadata | None = None,
    ) -> A:
        """Load, run ``command(aggregate)`` (awaited if it returns an awaitable), save; on a conflict, again.

        See [`Repository.update`][dynamo_es.Repository.update]: the same rules.
        """
        check_attempts(attempts)
        attempt = 1
        while True:
            aggregate = await self.get(aggregate_id)
            await _awaited(command(aggregate))
            try:
                await self.save(aggregate, metadata=metadata)
            except ConcurrencyError:
                if attempt >= attempts:
                    raise
            else:
                return aggregate
            await asyncio.sleep(conflict_delay(attempt, aggregate))
            attempt += 1

    async def take_snapshot(self, aggregate: A) -> Snapshot | None:
        """Snapshot the aggregate's committed state now; None (and a warning) if that fails."""
        check_class(self.aggregate_class, aggregate)
        if self.snapshots is None or aggregate.uncommitted_events:
            return None
        try:
            snapshot = capture(aggregate, self.store.serializer)
            await self.snapshots.save(snapshot)
        except SNAPSHOT_ERRORS as error:
            log.warning("no snapshot of %r: %s", aggregate, error)
            return None
        return snapshot

    async def _from_snapshot(self, aggregate_id: str, version: int | None) -> A | None:
        if self.snapshots is None:
            return None
        cls = self.aggregate_class
        snapshot = await self.snapshots.load_latest(cls.aggregate_type, aggregate_id, max_version=version)
        return restore(cls, aggregate_id, snapshot, self.store.serializer)

    async def exists(self, aggregate_id: str) -> bool:
        """Whether the aggregate's stream holds any event."""
        return await self.store.stream_version(aggregate_id, self.aggregate_class.aggregate_type) > 0


@attrs.define
class AsyncUnitOfWork(UnitMembers):
    """[`UnitOfWork`][dynamo_es.UnitOfWork] for an async store: aggregates saved in one transaction.

    With ``snapshots`` and a ``snapshot_strategy``, it loads from snapshots and takes them after
    commits, as the sync unit does.
    """

    store: AsyncEventStore = attrs.field(validator=lambda _, __, store: check_async_store(store))
    snapshots: AsyncSnapshotStore | None = attrs.field(default=None, kw_only=True)
    snapshot_strategy: SnapshotStrategy | None = attrs.field(default=None, kw_only=True)
    _aggregates: dict[str, AggregateRoot] = attrs.field(factory=dict, init=False, repr=False)

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
        """Await ``work(unit)`` on a fresh unit and commit it; on a conflict, again.

        See [`UnitOfWork.run`][dynamo_es.UnitOfWork.run]: the same rules.
        """
        check_attempts(attempts)
        attempt = 1
        while True:
            unit = cls(store, snapshots=snapshots, snapshot_strategy=snapshot_strategy)
            result = await work(unit)
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
        """The aggregate, loaded once per unit (the same object on later calls)."""
        stream_id, known = self._member(aggregate_class, aggregate_id)
        if known is not None:
            return known
        aggregate = await self._repository(aggregate_class).get(aggregate_id)
        self._aggregates[stream_id] = aggregate
        return aggregate

    def _repository(self, aggregate_class: type[A]) -> AsyncRepository[A]:
        return AsyncRepository(aggregate_class, self.store, snapshots=self.snapshots)

    async def commit(self, *, metadata: EventMetadata | None = None, tracking: Tracking | None = None) -> CommitResult:
        """Save every pending aggregate in one transaction; see [`UnitOfWork.commit`][dynamo_es.UnitOfWork.commit]."""
        pending = self.pending
        previous = [aggregate.committed_version for aggregate in pending]
        result = await self.store.append_many(self.appends(metadata=metadata), tracking=tracking)
        mark_committed(pending, result.raise_for_failure())
        if not result.already_processed:
            for aggregate in self.due_snapshots(pending, previous):
                await self._repository(type(aggregate)).take_snapshot(aggregate)
        return result


async def _awaited(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
