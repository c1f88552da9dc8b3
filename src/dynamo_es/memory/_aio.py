"""The async in-memory store's hand-written part: its subscription, and what is not a plain delegation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import attrs

from ..core.backends.asyncio import AsyncStop
from ..core.changes import Change, StreamPosition
from ..core.reading import Selection
from ..core.serialization import EventSerializer
from ..ports.source import StartAt
from ._checkpoints import InMemoryCheckpointStore
from ._store import InMemoryEventStore
from ._subscription import MemorySubscription

__all__ = ["AsyncMemoryShell", "AsyncMemorySubscription"]


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


# What is not a plain delegation; AsyncInMemoryEventStore (memory/_aio_store.py) adds every other
# public method of the sync store, generated from it by scripts/unasync.py.
@attrs.define
class AsyncMemoryShell:
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

    async def subscribe_to_changes(
        self,
        position: StreamPosition | None = None,
        *,
        start_at: StartAt = "trim_horizon",
        reads: Selection | None = None,
    ) -> AsyncMemorySubscription:
        """An async subscription to this store's appends (and outbox marks); ``reads`` as for the sync store."""
        return AsyncMemorySubscription(self.sync.subscribe_to_changes(position, start_at=start_at, reads=reads))
