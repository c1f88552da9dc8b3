"""The async in-memory store's hand-written shell: what is not a plain delegation to the sync store."""

from __future__ import annotations

import attrs

from ..core.changes import StreamPosition
from ..core.reading import Selection
from ..core.serialization import EventSerializer
from ..ports.source import StartAt
from ._async.subscription import AsyncMemorySubscription
from ._checkpoints import InMemoryCheckpointStore
from ._store import InMemoryEventStore

__all__ = ["AsyncMemoryShell"]


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
        sync = self.sync.subscribe_to_changes(position, start_at=start_at, reads=reads)
        return AsyncMemorySubscription(
            sync.log, sync.decoder, sync.position, start_at=sync.start_at, poll_interval=sync.poll_interval
        )
