"""AsyncInMemoryEventStore: the in-memory store behind the async protocol (it does no I/O to await)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs

from ..core.backends.asyncio import AsyncStop
from ..core.changes import Change, StreamPosition
from ..core.reading import Selection
from ..core.serialization import EventSerializer
from ..domain.events import EventMetadata, StoredEvent
from ..ports.source import StartAt
from ..ports.store import AppendResult, CommitResult, StreamAppend, Tracking
from ._checkpoints import InMemoryCheckpointStore
from ._store import InMemoryEventStore
from ._subscription import MemorySubscription

__all__ = ["AsyncInMemoryEventStore", "AsyncMemorySubscription"]


@attrs.define
class AsyncMemorySubscription:
    """The in-memory store's subscription for asyncio: the same changes, order and positions.

    Made by ``AsyncInMemoryEventStore.subscribe_to_changes()``. An idle read waits
    ``poll_interval`` seconds on the loop (`stop()` cuts it short).
    """

    sync: MemorySubscription
    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)

    @property
    def position(self) -> StreamPosition:
        """How far the subscription has delivered."""
        return self.sync.position

    @property
    def records_lost(self) -> int:
        """Always 0: an in-memory log is never trimmed."""
        return self.sync.records_lost

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped.is_set()

    async def start(self) -> AsyncMemorySubscription:
        """Fix where reading begins."""
        self.sync.start()
        return self

    def stop(self) -> None:
        """End iteration after the batch in hand (and an idle wait at once)."""
        self._stopped.set()

    async def poll(self) -> list[Change]:
        """The changes not yet delivered; the position moves past them."""
        await asyncio.sleep(0)
        return self.sync.poll()

    async def batches(self, *, stop_when_idle: bool = False) -> AsyncIterator[list[Change]]:
        """The changes, one list per read; with ``stop_when_idle``, end once caught up."""
        while not self.stopped:
            batch = await self.poll()
            if batch:
                yield batch
            elif stop_when_idle:
                return
            else:
                await self._stopped.wait(self.sync.poll_interval)

    async def __aiter__(self) -> AsyncIterator[Change]:
        async for batch in self.batches():
            for change in batch:
                yield change


@attrs.define
class AsyncInMemoryEventStore:
    """An [`AsyncEventStore`][dynamo_es.aio.AsyncEventStore] over an in-memory store.

    For unit tests of async code: the same semantics. Every call yields to the event loop once
    before it acts, as a request would, so concurrent tasks interleave as they would on DynamoDB.
    ``sync`` is the store underneath (to share it with sync code, or to read ``sync.tracking``).
    """

    sync: InMemoryEventStore = attrs.field(factory=InMemoryEventStore)

    @property
    def tracking(self) -> InMemoryCheckpointStore:
        """The checkpoints that see the tracking records (an async process manager's checkpoints)."""
        return self.sync.tracking

    @property
    def serializer(self) -> EventSerializer:
        """The serializer of the store underneath."""
        return self.sync.serializer

    async def append(
        self,
        aggregate_id: str,
        aggregate_type: str,
        events: Sequence[Any],
        expected_version: int,
        *,
        metadata: EventMetadata | None = None,
    ) -> AppendResult:
        """Append events after ``expected_version``."""
        await asyncio.sleep(0)
        return self.sync.append(aggregate_id, aggregate_type, events, expected_version, metadata=metadata)

    async def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams at once, all or nothing."""
        await asyncio.sleep(0)
        return self.sync.append_many(appends, tracking=tracking)

    async def load(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version``."""
        await asyncio.sleep(0)
        return self.sync.load(aggregate_id, aggregate_type, from_version=from_version, to_version=to_version)

    async def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        await asyncio.sleep(0)
        return self.sync.stream_version(aggregate_id, aggregate_type)

    async def undispatched(self, *, page_size: int = 100) -> AsyncIterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first."""
        for stored in self.sync.undispatched(page_size=page_size):
            await asyncio.sleep(0)
            yield stored

    async def count_undispatched(self) -> int:
        """How many events are waiting in the outbox."""
        await asyncio.sleep(0)
        return self.sync.count_undispatched()

    async def claim(
        self, aggregate_id: str, aggregate_type: str, version: int, *, owner: str, lease_seconds: float
    ) -> bool:
        """Claim an undispatched event for one dispatcher, with the DynamoDB store's rules."""
        await asyncio.sleep(0)
        return self.sync.claim(aggregate_id, aggregate_type, version, owner=owner, lease_seconds=lease_seconds)

    async def mark_dispatched(self, aggregate_id: str, aggregate_type: str, version: int) -> bool:
        """Mark one event dispatched; False when it already was."""
        await asyncio.sleep(0)
        return self.sync.mark_dispatched(aggregate_id, aggregate_type, version)

    async def subscribe_to_changes(
        self,
        position: StreamPosition | None = None,
        *,
        start_at: StartAt = "trim_horizon",
        reads: Selection | None = None,
    ) -> AsyncMemorySubscription:
        """An async subscription to this store's appends (and outbox marks); ``reads`` as for the sync store."""
        return AsyncMemorySubscription(self.sync.subscribe_to_changes(position, start_at=start_at, reads=reads))

    async def read_changes(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        reads: Selection | None = None,
    ) -> list[Change]:
        """The stream's events as changes; see [`ChangeReader`][dynamo_es.projections.ChangeReader]."""
        await asyncio.sleep(0)
        return self.sync.read_changes(
            aggregate_id, aggregate_type, from_version=from_version, to_version=to_version, reads=reads
        )

    async def scan_changes(
        self, *, reads: Selection | None = None, segments: int = 4, page_size: int = 1000
    ) -> AsyncIterator[list[Change]]:
        """Every stream's events as changes, a page at a time."""
        for page in self.sync.scan_changes(reads=reads, segments=segments, page_size=page_size):
            await asyncio.sleep(0)
            yield page

    async def scan(self, *, segments: int = 4, page_size: int = 1000) -> AsyncIterator[list[StoredEvent]]:
        """Every stream's events, a page at a time."""
        for page in self.sync.scan(segments=segments, page_size=page_size):
            await asyncio.sleep(0)
            yield page
