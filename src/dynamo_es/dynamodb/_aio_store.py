"""AsyncDynamoDBEventStore: the DynamoDB event store on aiobotocore, driving the same flows as the sync one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import attrs

from ..core.changes import Change, StreamPosition
from ..core.reading import ChangeDecoder, Selection
from ..core.serialization import EventSerializer
from ..domain.events import EventMetadata, StoredEvent
from ..ports.source import StartAt, TrimmedPolicy
from ..ports.store import AppendResult, CommitResult, StreamAppend, Tracking, check_version, make_stream_id
from ..settings import EventStoreSettings
from ._aio_checkpoints import AsyncDynamoDBCheckpointStore
from ._aio_scan import scan_events_async
from ._aio_streams import AsyncSubscription
from ._scan import change_reader, event_reader, selection_filter
from ._streams import record_decoder, subscription_arguments
from .flows.base import Flow, drive_async
from .flows.checkpoints import CheckpointFlows, CheckpointItem, checkpoint_model
from .flows.outbox import OutboxIndex, OutboxReader
from .flows.store import StoreCore
from .schema.model import EventItem, EventItemCodec, event_model
from .schema.table import LazyTable
from .wire.aio_client import AsyncClientOwner, LazyAsyncClient

__all__ = ["AsyncDynamoDBEventStore"]

T = TypeVar("T")


@attrs.define
class AsyncDynamoDBEventStore(AsyncClientOwner):
    """An [`AsyncEventStore`][dynamo_es.aio.AsyncEventStore] on a DynamoDB table, over aiobotocore.

    The same transactions, concurrency checks, idempotent retries, read-backs, size checks and
    errors as [`DynamoDBEventStore`][dynamo_es.DynamoDBEventStore]: both drive one set of flows
    (the algorithms without I/O); this one awaits each request on the event loop. Use it as an
    async context manager, or call ``close()``;
    the client opens on first use, in the running loop. The one-time table check runs in a thread.

    Attributes:
        settings: the table, endpoint and behaviour.
        serializer: the event codec.
        page_items: items per Query page of a load: each page is parsed on the event loop, so
            smaller pages mean shorter pauses of other tasks (and more requests).
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    serializer: EventSerializer = attrs.field(factory=EventSerializer, kw_only=True)
    page_items: int | None = attrs.field(default=1000, kw_only=True)
    _model: type[EventItem] = attrs.field(init=False, repr=False)
    _checked: LazyTable[EventItem] = attrs.field(init=False, repr=False)
    _core: StoreCore = attrs.field(init=False, repr=False)
    _tracking_table: LazyTable[CheckpointItem] = attrs.field(init=False, repr=False)
    _client: LazyAsyncClient = attrs.field(init=False, repr=False)
    _outbox: OutboxIndex = attrs.field(init=False, repr=False)
    _ready: set[str] = attrs.field(factory=set, init=False, repr=False)
    _preparing: asyncio.Lock | None = attrs.field(default=None, init=False, repr=False)
    _async_tracking: AsyncDynamoDBCheckpointStore | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._model = event_model(self.settings)
        self._checked = LazyTable(self._model, self.settings.create_table_if_not_exists)
        tracking = checkpoint_model(self.settings)
        self._tracking_table = LazyTable(tracking, self.settings.create_table_if_not_exists)
        codec = EventItemCodec(self._model)
        # the I/O-free update only: the checkpoints table is checked by _prepare(tracking=True), in a thread
        tracking_update = CheckpointFlows(self.settings, tracking).tracking_update
        self._core = StoreCore(
            self.settings, self.serializer, codec, tracking_update, tracking.version.attr_name, self.page_items
        )
        self._client = LazyAsyncClient(self.settings)
        self._outbox = OutboxIndex(self.settings.events_table_name, codec)

    @property
    def tracking(self) -> AsyncDynamoDBCheckpointStore:
        """Where [`append_many`][dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore.append_many] records tracking.

        An async checkpoint store of the same settings (an async process manager's checkpoints);
        closed with this store.
        """
        if self._async_tracking is None:
            self._async_tracking = AsyncDynamoDBCheckpointStore(self.settings)
        return self._async_tracking

    async def close(self) -> None:
        """Close the clients (connection pools); the store reopens them when used again."""
        await super().close()
        if self._async_tracking is not None:
            await self._async_tracking.close()

    async def ensure_table(self) -> dict[str, Any]:
        """Check the events table (creating it if missing and allowed), in a thread; its description."""
        description: dict[str, Any] = await asyncio.to_thread(self._checked.ensure)
        self._ready.add("events")
        return description

    async def _prepare(self, *, tracking: bool = False) -> None:
        wanted = {"events", "tracking"} if tracking else {"events"}
        if wanted <= self._ready:
            return
        self._preparing = self._preparing or asyncio.Lock()
        async with self._preparing:  # many tasks' first use: one table check
            if "events" not in self._ready:
                await self.ensure_table()
            if tracking and "tracking" not in self._ready:
                await asyncio.to_thread(self._tracking_table.ensure)
                self._ready.add("tracking")

    async def _run(self, flow: Flow[T]) -> T:
        return await drive_async(flow, await self._client.get())

    async def append(
        self,
        aggregate_id: str,
        aggregate_type: str,
        events: Sequence[Any],
        expected_version: int,
        *,
        metadata: EventMetadata | None = None,
    ) -> AppendResult:
        """Append events after ``expected_version``; see [`EventStore`][dynamo_es.EventStore]."""
        stream_id, records = self._core.encode(aggregate_id, aggregate_type, events, expected_version, metadata)
        if records:
            await self._prepare()
        return await self._run(self._core.append(stream_id, records, expected_version))

    async def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams in one transaction, all or nothing; see [`EventStore`][dynamo_es.EventStore]."""
        encoded = self._core.encode_commit(appends, tracking)
        if encoded or tracking is not None:
            await self._prepare(tracking=tracking is not None)
        return await self._run(self._core.commit(encoded, tracking))

    async def load(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version``, in version order (consistent reads)."""
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return []
        await self._prepare()
        return await self._run(self._core.load(aggregate_id, aggregate_type, from_version, to_version))

    async def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        make_stream_id(aggregate_type, aggregate_id)
        await self._prepare()
        return await self._run(self._core.stream_version(aggregate_id, aggregate_type))

    async def tracked_version(self, tracking: Tracking) -> int:
        """The version recorded under ``tracking``'s name and stream; 0 for none."""
        await self._prepare(tracking=True)
        return await self._run(self._core.tracked_version(tracking))

    # -- outbox ----------------------------------------------------------------------------

    async def undispatched(self, *, page_size: int = 100) -> AsyncIterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first, from the sparse ``outbox`` index (lazily, by pages)."""
        await self._prepare()
        reader = OutboxReader(self._outbox, page_size)
        while (record := await self._run(reader.next())) is not None:
            yield self.serializer.decode(record)

    async def count_undispatched(self) -> int:
        """How many events are waiting in the outbox."""
        await self._prepare()
        return await self._run(self._outbox.count())

    async def claim(
        self, aggregate_id: str, aggregate_type: str, version: int, *, owner: str, lease_seconds: float
    ) -> bool:
        """Claim an undispatched event for one dispatcher; see [`OutboxStore`][dynamo_es.OutboxStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        version = check_version("version", version, minimum=1)
        await self._prepare()
        return await self._run(self._outbox.claim(stream_id, version, owner=owner, lease_seconds=lease_seconds))

    async def mark_dispatched(self, aggregate_id: str, aggregate_type: str, version: int) -> bool:
        """Mark one event dispatched; False when it already was (marking twice is harmless)."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        version = check_version("version", version, minimum=1)
        await self._prepare()
        return await self._run(self._outbox.mark_dispatched(stream_id, version))

    async def scan(self, *, segments: int = 4, page_size: int = 1000) -> AsyncIterator[list[StoredEvent]]:
        """Every stream's events, in pages, from a strongly consistent Scan: ``segments`` concurrent tasks.

        For rebuilding read models; see [`DynamoDBEventStore.scan`][dynamo_es.DynamoDBEventStore.scan].
        """
        await self._prepare()
        table, codec = self.settings.events_table_name, self._core.codec
        pages = scan_events_async(
            await self._client.get(), table, codec, event_reader(codec, self.serializer), segments=segments,
            page_size=page_size,
        )  # fmt: skip
        async with contextlib.aclosing(pages):  # leaving early stops the segment readers at once
            async for page in pages:
                yield page

    async def scan_changes(
        self, *, reads: Selection | None = None, segments: int = 4, page_size: int = 1000
    ) -> AsyncIterator[list[Change]]:
        """Every stream's events as changes, in pages, from the same Scan as `scan()`.

        See [`DynamoDBEventStore.scan_changes`][dynamo_es.DynamoDBEventStore.scan_changes].
        """
        await self._prepare()
        table, codec = self.settings.events_table_name, self._core.codec
        decoder = ChangeDecoder(self.serializer, reads)
        read, filters = change_reader(codec, decoder), selection_filter(codec, decoder.selection)
        pages = scan_events_async(
            await self._client.get(), table, codec, read, segments=segments, page_size=page_size, filters=filters
        )
        async with contextlib.aclosing(pages):
            async for page in pages:
                yield page

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
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return []
        await self._prepare()
        decoder = ChangeDecoder(self.serializer, reads)
        return await self._run(
            self._core.read_changes(aggregate_id, aggregate_type, (from_version, to_version), decoder)
        )

    # -- changes ---------------------------------------------------------------------------

    async def subscribe_to_changes(
        self,
        position: StreamPosition | None = None,
        *,
        start_at: StartAt = "trim_horizon",
        on_trimmed: TrimmedPolicy = "restart",
        reads: Selection | None = None,
    ) -> AsyncSubscription:
        """An [`AsyncSubscription`][dynamo_es.dynamodb.aio.AsyncSubscription] to this table's stream.

        The arguments are those of
        [`DynamoDBEventStore.subscribe_to_changes`][dynamo_es.DynamoDBEventStore.subscribe_to_changes].

        Raises:
            SubscriptionError: the table has no stream (``enable_streams`` off).
        """
        decode = record_decoder(self.serializer, self._core.codec, reads)
        arguments = subscription_arguments(
            self.settings, await self.ensure_table(), decode, position, start_at=start_at, on_trimmed=on_trimmed
        )
        return AsyncSubscription(LazyAsyncClient(self.settings, "dynamodbstreams"), **arguments)
