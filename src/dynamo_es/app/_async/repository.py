"""The repository: load aggregates by replaying their stream (from a snapshot), save what they recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from ...core.backends.asyncio import awaited, replay
from ...core.gc import collection_paused
from ...domain.aggregate import AggregateRoot
from ...domain.events import EventHistory, EventMetadata, StoredEvent
from ...exceptions import (
    AggregateNotFoundError,
    ConcurrencyError,
    EventStoreError,
    SnapshotError,
    StreamArchivedError,
    StreamDeletedError,
    StreamExpiredError,
)
from ...ports.lifecycle import (
    AsyncArchivableStore,
    AsyncDeletableStore,
    StreamArchival,
    StreamDeletion,
    StreamTruncation,
)
from ...ports.snapshots import AsyncSnapshotStore, Snapshot, SnapshotStrategy
from ...ports.store import AsyncEventStore, AsyncReplayableStore, check_version
from .._checks import (
    SNAPSHOT_ERRORS,
    capture,
    check_async_store,
    check_attempts,
    check_class,
    check_snapshot_options,
    conflict_delay,
    is_sealed,
    log,
    restore,
)

__all__ = ["AsyncRepository"]

A = TypeVar("A", bound=AggregateRoot)


@attrs.define
class AsyncRepository(Generic[A]):
    """Loads and saves aggregates of one class through any [`AsyncEventStore`][dynamo_es.aio.AsyncEventStore].

    ``AsyncRepository(BankAccount, store).get("acc-1")`` gives a ``BankAccount``.

    Attributes:
        aggregate_class: the aggregate class; it must accept ``cls(aggregate_id)``.
        store: where the events live.
        snapshots: where snapshots live; with it, `get()` starts from the latest usable
            snapshot and replays only the events after it.
        snapshot_strategy: when `save()` takes a snapshot (e.g. ``EveryNEvents(100)``).
    """

    aggregate_class: type[A]
    store: AsyncEventStore = attrs.field(validator=lambda _, __, store: check_async_store(store))
    snapshots: AsyncSnapshotStore | None = attrs.field(default=None, kw_only=True)
    snapshot_strategy: SnapshotStrategy | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        check_snapshot_options(self.snapshots, self.snapshot_strategy)

    async def get(self, aggregate_id: str, *, version: int | None = None, archived: bool = False) -> A:
        """The aggregate rebuilt from its events; with ``version``, as it was at that version.

        With ``version`` past the end of the stream, the aggregate is at its latest version
        (check ``aggregate.version``). With ``archived``, the events come from the archive
        table (`archive()`): an archived aggregate loads only so, read-only.

        Raises:
            AggregateNotFoundError: the stream has no event (up to ``version``), or, with
                ``archived``, it is not archived.
            StreamArchivedError: the stream is archived (and ``archived`` is not given).
        """
        if version is not None:
            check_version("version", version, minimum=1)
        with collection_paused():  # a load's thousands of objects are freed before the collector would walk them
            return await self._get(aggregate_id, version, archived=archived)

    async def _get(self, aggregate_id: str, version: int | None, *, archived: bool) -> A:
        aggregate_type = self.aggregate_class.aggregate_type
        aggregate = await self._from_snapshot(aggregate_id, version)
        if aggregate is not None:
            await replay(aggregate, await self._events(aggregate_id, aggregate.version + 1, version, archived=archived))
            return aggregate
        events = await self._events(aggregate_id, 1, version, archived=archived)
        if not events:
            raise AggregateNotFoundError(aggregate_type, aggregate_id)
        aggregate = self.aggregate_class(aggregate_id)
        await replay(aggregate, events)
        return aggregate

    async def _events(
        self, aggregate_id: str, first: int, last: int | None, *, archived: bool = False
    ) -> Sequence[StoredEvent] | EventHistory:
        """The events to replay: only the decoded events when the store can give them alone."""
        aggregate_type = self.aggregate_class.aggregate_type
        if archived:
            store = self._archivable("load archived streams")
            return await store.load_archived(aggregate_id, aggregate_type, from_version=first, to_version=last)
        if isinstance(self.store, AsyncReplayableStore):
            return await self.store.load_history(aggregate_id, aggregate_type, from_version=first, to_version=last)
        return await self.store.load(aggregate_id, aggregate_type, from_version=first, to_version=last)

    async def save(self, aggregate: A, *, metadata: EventMetadata | None = None) -> int:
        """Append the aggregate's uncommitted events; return its new version.

        The expected version is the one it was loaded (or last saved) at. Events go in the
        store's transactions of up to 100; with nothing uncommitted this is a no-op.
        ``metadata`` (correlation id, say) is laid over every event's own. A snapshot is taken
        afterwards when the strategy says so; a failed snapshot is logged, never raised.

        Raises:
            AggregateClassError: ``aggregate`` is not of this repository's class.
            ConcurrencyError: another writer appended first; reload and retry the command.
            EventStoreError: the store failed (the aggregate keeps its uncommitted events).
        """
        check_class(self.aggregate_class, aggregate)
        if not aggregate.uncommitted_events:
            return aggregate.version
        previous = aggregate.committed_version
        result = await self.store.append(
            aggregate.id, aggregate.aggregate_type, aggregate.uncommitted_events, previous, metadata=metadata
        )
        result.raise_for_failure()
        aggregate.mark_committed()
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
        """Load the aggregate, run ``command(aggregate)``, save; on a conflict, do it all again.

        The usual answer to `ConcurrencyError`: another writer saved first, so the command runs
        again on the fresh aggregate (its rules see the other writer's events), up to
        ``attempts`` times in all, with a short jittered pause between. Returns the saved
        aggregate. The async repository awaits a command that returns an awaitable.

        Raises:
            ConcurrencyError: the last attempt conflicted too.
            AggregateNotFoundError: the aggregate has no events (nothing to update).
        """
        check_attempts(attempts)
        attempt = 1
        while True:
            aggregate = await self.get(aggregate_id)
            await awaited(command(aggregate))
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

    async def delete(
        self, aggregate_id: str, *, expected_version: int | None = None, reason: str = "", reuse_id: bool = False
    ) -> StreamDeletion:
        """Delete the aggregate: its snapshots, then its stream (see `AsyncDeletableStore.delete_stream`).

        The snapshots go first, so none can bring the state back: a `get()` then raises
        `StreamDeletedError`, at any version.

        Raises:
            EventStoreError: the store cannot delete streams.
            SnapshotError: the snapshot store cannot delete snapshots (it has no ``delete_snapshots``).
            ConcurrencyError: ``expected_version`` is not the stream's (its snapshots are gone all the same).
        """
        cls = self.aggregate_class
        if not isinstance(self.store, AsyncDeletableStore):
            raise EventStoreError(f"{type(self.store).__name__} cannot delete streams")
        if self.snapshots is not None:
            delete_snapshots = getattr(self.snapshots, "delete_snapshots", None)
            if delete_snapshots is None:
                raise SnapshotError(f"{type(self.snapshots).__name__} cannot delete snapshots (no delete_snapshots)")
            await awaited(delete_snapshots(cls.aggregate_type, aggregate_id))
        return await self.store.delete_stream(
            aggregate_id, cls.aggregate_type, expected_version=expected_version, reason=reason, reuse_id=reuse_id
        )

    async def truncate(self, aggregate_id: str, *, before: int | None = None) -> StreamTruncation:
        """Remove the aggregate's events before ``before`` (default: its latest snapshot's version).

        Only behind a usable snapshot at ``before`` or later, so `get()` still loads it (from
        the snapshot); `get(version=...)` before that snapshot raises `StreamTruncatedError`.

        Raises:
            SnapshotError: no snapshot store, no usable snapshot, or one older than ``before``.
            EventStoreError: the store cannot truncate (it is no `AsyncDeletableStore`).
        """
        cls = self.aggregate_class
        if not isinstance(self.store, AsyncDeletableStore):
            raise EventStoreError(f"{type(self.store).__name__} cannot truncate streams")
        if self.snapshots is None:
            raise SnapshotError(f"truncating {cls.aggregate_type}:{aggregate_id} needs a snapshot store")
        snapshot = await self.snapshots.load_latest(cls.aggregate_type, aggregate_id)
        if snapshot is None or restore(cls, aggregate_id, snapshot, self.store.serializer) is None:
            raise SnapshotError(f"no usable snapshot of {cls.aggregate_type}:{aggregate_id}: take one first")
        if is_sealed(snapshot):  # forgetting a subject would leave neither the snapshot nor the events to load
            raise SnapshotError(
                f"{cls.aggregate_type}:{aggregate_id}'s snapshot holds personal data: truncating would make it "
                "unloadable once a subject is forgotten"
            )
        before = snapshot.version if before is None else before
        if before > snapshot.version:
            raise SnapshotError(
                f"cannot truncate {cls.aggregate_type}:{aggregate_id} before version {before}: "
                f"its latest snapshot is at {snapshot.version}"
            )
        return await self.store.truncate_stream(aggregate_id, cls.aggregate_type, before)

    async def archive(self, aggregate_id: str) -> StreamArchival:
        """Move the aggregate's events to the archive table (see `AsyncArchivableStore.archive_stream`).

        Its snapshots stay. Until `restore()`, `get()` raises `StreamArchivedError` and saves
        conflict; ``get(aggregate_id, archived=True)`` loads it from the archive.
        """
        store = self._archivable("archive streams")
        return await store.archive_stream(aggregate_id, self.aggregate_class.aggregate_type)

    async def restore(self, aggregate_id: str) -> StreamArchival:
        """Move an archived aggregate's events back: it loads and saves again (idempotent)."""
        store = self._archivable("restore streams")
        return await store.restore_stream(aggregate_id, self.aggregate_class.aggregate_type)

    def _archivable(self, action: str) -> AsyncArchivableStore:
        if not isinstance(self.store, AsyncArchivableStore):
            raise EventStoreError(f"{type(self.store).__name__} cannot {action}")
        return self.store

    async def _from_snapshot(self, aggregate_id: str, version: int | None) -> A | None:
        if self.snapshots is None:
            return None
        cls = self.aggregate_class
        snapshot = await self.snapshots.load_latest(cls.aggregate_type, aggregate_id, max_version=version)
        return restore(cls, aggregate_id, snapshot, self.store.serializer)

    async def exists(self, aggregate_id: str) -> bool:
        """Whether the aggregate's stream holds any event (a deleted or expired one does not; an archived one does)."""
        aggregate_type = self.aggregate_class.aggregate_type
        version = await self.store.stream_version(aggregate_id, aggregate_type)
        if version == 0:
            return False
        try:
            await self.store.load(aggregate_id, aggregate_type, from_version=version, to_version=version)
        except (StreamDeletedError, StreamExpiredError):
            return False
        except StreamArchivedError:
            return True  # in the archive table
        return True
