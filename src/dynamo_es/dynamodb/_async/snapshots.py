"""The snapshot store: snapshots in a table of their own, keyed like the event streams."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from ...ports.snapshots import Snapshot
from ...ports.store import make_stream_id
from ...settings import EventStoreSettings
from ..flows.base import drive_async
from ..flows.snapshots import check_snapshot, delete_all_flow, load_latest_flow, save_flow
from ..schema.snapshots import SnapshotItem, snapshot_model
from ..schema.table import LazyTable
from ..wire.aio_client import AsyncClientOwner, LazyAsyncClient

__all__ = ["AsyncDynamoDBSnapshotStore"]


@attrs.define
class AsyncDynamoDBSnapshotStore(AsyncClientOwner):
    """The [`AsyncSnapshotStore`][dynamo_es.aio.AsyncSnapshotStore] on ``snapshots_table_name`` (``pk`` S, ``sk`` N).

    Snapshots stay out of the events table, so its items, its stream and its outbox index
    hold events only. Every snapshot is kept (time travel can start from an older one). A
    context manager (or call ``close()``); the async store checks its table once, in a thread.
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[SnapshotItem] = attrs.field(init=False, repr=False)
    _client: LazyAsyncClient = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._table = LazyTable(snapshot_model(self.settings), self.settings.create_table_if_not_exists)
        self._client = LazyAsyncClient(self.settings)

    async def ensure_table(self) -> dict[str, Any]:
        """Check the snapshots table, creating it if missing and allowed; its description."""
        description: dict[str, Any] = await asyncio.to_thread(self._table.ensure)
        return description

    async def _ready(self) -> None:
        if not self._table.checked:
            await asyncio.to_thread(self._table.ready)

    async def load_latest(
        self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None
    ) -> Snapshot | None:
        """The newest snapshot of the aggregate at or below ``max_version``, or None."""
        flow = load_latest_flow(self.settings, aggregate_type, aggregate_id, max_version)
        make_stream_id(aggregate_type, aggregate_id)  # bad input raises before the table check
        await self._ready()
        snapshot: Snapshot | None = await drive_async(flow, await self._client.get())
        return snapshot

    async def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` (replacing one at the same version).

        Raises:
            SnapshotError: the state would make an item over DynamoDB's 400 KB.
        """
        flow = save_flow(self.settings, snapshot)
        check_snapshot(snapshot)
        await self._ready()
        await drive_async(flow, await self._client.get())

    async def delete_snapshots(self, aggregate_type: str, aggregate_id: str) -> int:
        """Delete every snapshot of the aggregate; how many there were."""
        flow = delete_all_flow(self.settings, aggregate_type, aggregate_id)
        await self._ready()
        deleted: int = await drive_async(flow, await self._client.get())
        return deleted
