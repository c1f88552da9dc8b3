"""AsyncDynamoDBCheckpointStore: the checkpoint store's flows, awaited on aiobotocore."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

from ..core.changes import StreamPosition
from ..domain.events import StoredEvent
from ..ports.checkpoints import StreamProgress
from ..settings import EventStoreSettings
from .flows.base import Flow, drive_async
from .flows.checkpoints import CheckpointFlows, CheckpointItem, checkpoint_model
from .schema.table import LazyTable
from .wire.aio_client import AsyncClientOwner, LazyAsyncClient

__all__ = ["AsyncDynamoDBCheckpointStore"]

T = TypeVar("T")


@attrs.define
class AsyncDynamoDBCheckpointStore(AsyncClientOwner):
    """[`DynamoDBCheckpointStore`][dynamo_es.DynamoDBCheckpointStore] with awaitable methods, over aiobotocore.

    The same conditional writes (positions and versions never move back), failure counting,
    parking and exactly-once read-model commits: both stores drive one set of flows. An async
    context manager (or call ``close()``); the one-time table check runs in a thread.
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[CheckpointItem] = attrs.field(init=False, repr=False)
    _flows: CheckpointFlows = attrs.field(init=False, repr=False)
    _client: LazyAsyncClient = attrs.field(init=False, repr=False)
    _checked: bool = attrs.field(default=False, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        model = checkpoint_model(self.settings)
        self._table = LazyTable(model, self.settings.create_table_if_not_exists)
        self._flows = CheckpointFlows(self.settings, model)
        self._client = LazyAsyncClient(self.settings)

    async def ensure_table(self) -> dict[str, Any]:
        """Check the checkpoints table (creating it if missing and allowed), in a thread."""
        description: dict[str, Any] = await asyncio.to_thread(self._table.ensure)
        self._checked = True
        return description

    async def _run(self, flow: Flow[T]) -> T:
        if not self._checked:
            await self.ensure_table()
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

    async def record_failure(
        self, name: str, stream_id: str, version: int, error: str, *, park_after: int | None
    ) -> int:
        """Count a failed attempt at ``version``; park the stream once the count reaches ``park_after``."""
        return await self._run(self._flows.record_failure(name, stream_id, version, error, park_after=park_after))

    async def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Apply read-model writes and record ``event``'s version in one transaction; False for a redelivery."""
        return await self._run(self._flows.commit_effects(name, event, effects))

    async def parked(self, name: str) -> dict[str, StreamProgress]:
        """The parked streams of ``name``."""
        return await self._run(self._flows.parked(name))

    async def unpark(self, name: str, stream_id: str) -> None:
        """Let ``stream_id`` be applied again; its failure count restarts."""
        await self._run(self._flows.unpark(name, stream_id))
