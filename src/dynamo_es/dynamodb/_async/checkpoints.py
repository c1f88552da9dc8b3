"""The checkpoint store: projection checkpoints in a DynamoDB table of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

from ...core.changes import StreamPosition
from ...domain.events import StoredEvent
from ...ports.checkpoints import StreamProgress
from ...ports.store import Tracking
from ...settings import EventStoreSettings
from ..flows.base import Flow, drive_async
from ..flows.checkpoints import CheckpointFlows, CheckpointItem, checkpoint_model
from ..schema.table import LazyTable
from ..wire.aio_client import AsyncClientOwner, LazyAsyncClient

__all__ = ["AsyncDynamoDBCheckpointStore"]

T = TypeVar("T")


@attrs.define
class AsyncDynamoDBCheckpointStore(AsyncClientOwner):
    """An [`AsyncCheckpointStore`][dynamo_es.aio.AsyncCheckpointStore] in a DynamoDB table (``checkpoints_table_name``).

    The table (``name`` S hash key, ``key`` S range key, no stream) is created on first use
    like the events table (the async store checks it once, in a thread). Every write is a
    conditional update, so concurrent workers of one projection never move a shard's position
    or a stream's version back. It is also an [effect sink][dynamo_es.projections.EffectSink]:
    handlers' read-model writes commit with the checkpoint (`commit_effects`). A context
    manager (or call ``close()``).
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[CheckpointItem] = attrs.field(init=False, repr=False)
    _flows: CheckpointFlows = attrs.field(init=False, repr=False)
    _client: LazyAsyncClient = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        model = checkpoint_model(self.settings)
        self._table = LazyTable(model, self.settings.create_table_if_not_exists)
        self._flows = CheckpointFlows(self.settings, model)
        self._client = LazyAsyncClient(self.settings)

    async def ensure_table(self) -> dict[str, Any]:
        """Check the checkpoints table, creating it if missing and allowed (in a thread, for the async store)."""
        description: dict[str, Any] = await asyncio.to_thread(self._table.ensure)
        return description

    async def ready(self) -> None:
        """Check the table once, before the first write (also before a commit that records tracking)."""
        if not self._table.checked:
            await asyncio.to_thread(self._table.ready)

    async def _run(self, flow: Flow[T]) -> T:
        await self.ready()
        return await drive_async(flow, await self._client.get())

    async def load_position(self, name: str) -> StreamPosition | None:
        """The position saved under ``name``, or None."""
        return await self._run(self._flows.load_position(name))

    async def save_position(self, name: str, position: StreamPosition) -> None:
        """Move each shard of ``name``'s position forward to ``position``'s; never back."""
        await self._run(self._flows.save_position(name, position))

    async def load_progress(self, name: str, stream_ids: Iterable[str]) -> dict[str, StreamProgress]:
        """The progress of each of ``stream_ids`` that has any."""
        return await self._run(self._flows.load_progress(name, stream_ids))

    async def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last applied version per stream, where it is newer; clears failures."""
        await self._run(self._flows.save_versions(name, versions))

    def tracking_update(self, tracking: Tracking) -> dict[str, Any]:
        """A transaction's Update that records ``tracking`` if it is newer (as `save_versions()` would).

        Its condition fails when the version is recorded already: the commit is a redelivery.
        It does no I/O: the store whose commit carries it checks the checkpoints table first.
        """
        return self._flows.tracking_update(tracking)

    async def record_failure(
        self, name: str, stream_id: str, version: int, error: str, *, park_after: int | None
    ) -> int:
        """Count a failed attempt at ``version``; park the stream once the count reaches ``park_after``."""
        return await self._run(self._flows.record_failure(name, stream_id, version, error, park_after=park_after))

    async def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Apply a handler's read-model writes and record ``event``'s version, in one transaction.

        ``effects`` is None, one `ReadModelWrite` (`PutItem`, `UpdateItem`, ...) or a list of
        them (at most 99). Returns False, writing nothing, when the version is recorded already (a
        redelivery).

        Raises:
            WriteConditionError: a write's own condition did not hold (nothing was written).
            TransactionTooLargeError: more than 99 writes, or over 4 MB.
            InvalidStreamError: two writes to one item (DynamoDB allows one action per item), or a
                stream id too long to be a checkpoint key.
            TransientStoreError, EventStoreError: DynamoDB failed (nothing was written, or the
                redelivery finds the version recorded).
        """
        return await self._run(self._flows.commit_effects(name, event, effects))

    async def parked(self, name: str) -> dict[str, StreamProgress]:
        """The parked streams of ``name``."""
        return await self._run(self._flows.parked(name))

    async def unpark(self, name: str, stream_id: str) -> None:
        """Let ``stream_id`` be applied again; its failure count restarts."""
        await self._run(self._flows.unpark(name, stream_id))
