"""AsyncDynamoDBSnapshotStore: the snapshot store's flows, awaited on aiobotocore."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from ..ports.snapshots import Snapshot
from ..ports.store import make_stream_id
from ..settings import EventStoreSettings
from ._snapshots import SnapshotItem, check_snapshot, load_latest_flow, save_flow, snapshot_model
from .flows.base import drive_async
from .schema.table import LazyTable
from .wire.aio_client import AsyncClientOwner, LazyAsyncClient

__all__ = ["AsyncDynamoDBSnapshotStore"]


@attrs.define
class AsyncDynamoDBSnapshotStore(AsyncClientOwner):
    """An [`AsyncSnapshotStore`][dynamo_es.aio.AsyncSnapshotStore] on the snapshots table, over aiobotocore.

    The same requests and checks as [`DynamoDBSnapshotStore`][dynamo_es.DynamoDBSnapshotStore];
    an async context manager (or call ``close()``). The one-time table check runs in a thread.
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[SnapshotItem] = attrs.field(init=False, repr=False)
    _client: LazyAsyncClient = attrs.field(init=False, repr=False)
    _checked: bool = attrs.field(default=False, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._table = LazyTable(snapshot_model(self.settings), self.settings.create_table_if_not_exists)
        self._client = LazyAsyncClient(self.settings)

    async def ensure_table(self) -> dict[str, Any]:
        """Check the snapshots table (creating it if missing and allowed), in a thread."""
        description: dict[str, Any] = await asyncio.to_thread(self._table.ensure)
        self._checked = True
        return description

    async def load_latest(
        self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None
    ) -> Snapshot | None:
        """The newest snapshot of the aggregate at or below ``max_version``, or None."""
        flow = load_latest_flow(self.settings, aggregate_type, aggregate_id, max_version)
        make_stream_id(aggregate_type, aggregate_id)
        if not self._checked:
            await self.ensure_table()
        return await drive_async(flow, await self._client.get())

    async def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` (replacing one at the same version)."""
        flow = save_flow(self.settings, snapshot)
        check_snapshot(snapshot)
        if not self._checked:
            await self.ensure_table()
        await drive_async(flow, await self._client.get())
