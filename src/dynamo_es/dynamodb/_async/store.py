"""The DynamoDB event store: streams of events in one DynamoDB table, appended with transactions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import attrs

from ...core.backends.asyncio import PAGE_ITEMS
from ...core.changes import Change, StreamPosition
from ...core.reading import ChangeDecoder, Selection
from ...core.serialization import EventSerializer
from ...domain.events import EventHistory, EventMetadata, StoredEvent
from ...observability import operations as observed
from ...ports.lifecycle import StreamArchival, StreamDeletion, StreamTruncation, check_lifetimes
from ...ports.source import StartAt, TrimmedPolicy
from ...ports.store import AppendResult, CommitResult, StreamAppend, Tracking, check_version, make_stream_id
from ...settings import EventStoreSettings
from ..flows.base import Flow, drive_async
from ..flows.checkpoints import checkpoint_model
from ..flows.outbox import OutboxIndex, OutboxReader
from ..flows.records import change_reader, event_reader, record_decoder, selection_filter, subscription_arguments
from ..flows.store import StoreCore
from ..schema.model import EventItem, EventItemCodec, archive_model, event_model
from ..schema.table import LazyTable
from ..wire.aio_client import AsyncEventClientOwner, LazyAsyncClient
from .checkpoints import AsyncDynamoDBCheckpointStore
from .scan import scan_events
from .subscription import AsyncSubscription

__all__ = ["AsyncDynamoDBEventStore"]

T = TypeVar("T")


@attrs.define
class AsyncDynamoDBEventStore(AsyncEventClientOwner):
    """An [`AsyncEventStore`][dynamo_es.aio.AsyncEventStore] on a DynamoDB table (see "Transactions and limits").

    Each transaction writes at most ``max_batch_size`` events within the 4 MB request limit;
    every Put is conditioned on its version slot being free, and the first transaction also
    checks that the expected version exists, so a stream never gets a gap or an overwrite.
    One transaction is atomic; an append that needs several is written in order and, should
    a later one fail, reports how far it got (``AppendResult.new_version``).

    The sync and the async store are one source (the async one awaits each request on the
    event loop). The client opens on first use; the table is checked (and created, with
    ``create_table_if_not_exists``) on first use, in a thread for the async store. A context
    manager, or call ``close()``.

    Attributes:
        settings: the table, endpoint and behaviour (default: ``EventStoreSettings()``).
        serializer: the event codec (default: the global registry, [`make_converter()`][dynamo_es.make_converter]).
        page_items: items per Query page of a load; None for DynamoDB's 1 MB pages (the sync
            store's default). The async store parses each page on the event loop, so its
            default is 250: smaller pages mean shorter pauses of other tasks (and more requests).
        expire_after: temporary streams, by aggregate type: each such stream expires this long
            after its first event (DynamoDB's TTL, on ``ttl_attribute``, then removes its items;
            see "Expiring temporary streams").
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    serializer: EventSerializer = attrs.field(factory=EventSerializer, kw_only=True)
    page_items: int | None = attrs.field(default=PAGE_ITEMS, kw_only=True)
    expire_after: Mapping[str, timedelta] = attrs.field(factory=dict, kw_only=True, validator=check_lifetimes)
    _model: type[EventItem] = attrs.field(init=False, repr=False)
    _checked: LazyTable[EventItem] = attrs.field(init=False, repr=False)
    _archive: LazyTable[EventItem] = attrs.field(init=False, repr=False)
    _core: StoreCore = attrs.field(init=False, repr=False)
    _client: LazyAsyncClient = attrs.field(init=False, repr=False)
    _outbox: OutboxIndex = attrs.field(init=False, repr=False)
    _tracking: AsyncDynamoDBCheckpointStore | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        settings = self.settings
        self._model = event_model(settings)
        self._checked = LazyTable(self._model, settings.create_table_if_not_exists)
        self._archive = LazyTable(archive_model(settings), settings.create_table_if_not_exists)
        codec = EventItemCodec(self._model)
        # the I/O-free update only: the checkpoints table is checked by _prepare(tracking=True)
        tracking_update = self.tracking.tracking_update
        version_attribute = checkpoint_model(settings).version.attr_name
        self._core = StoreCore(
            settings,
            self.serializer,
            codec,
            tracking_update,
            version_attribute,
            self.page_items,
            {aggregate_type: lifetime.total_seconds() for aggregate_type, lifetime in self.expire_after.items()},
        )
        self._client = LazyAsyncClient(settings)
        self._outbox = OutboxIndex(settings.events_table_name, codec)

    @property
    def model(self) -> type[EventItem]:
        """The PynamoDB model of this store's event items."""
        return self._model

    @property
    def tracking(self) -> AsyncDynamoDBCheckpointStore:
        """Where `append_many()` records [`Tracking`][dynamo_es.Tracking]: the checkpoints table of the same settings.

        A process manager uses it as its checkpoint store; it is closed with this store.
        """
        if self._tracking is None:
            self._tracking = AsyncDynamoDBCheckpointStore(self.settings)
        return self._tracking

    async def close(self) -> None:
        """Close the clients (connection pools); the store reopens them when used again."""
        await super().close()
        if self._tracking is not None:
            await self._tracking.close()

    async def ensure_table(self) -> dict[str, Any]:
        """Check the events table, creating it if missing and allowed; return its description."""
        description: dict[str, Any] = await asyncio.to_thread(self._checked.ensure)
        return description

    async def ensure_archive_table(self) -> dict[str, Any]:
        """Check the archive table (``archive_table_name``), creating it if missing and allowed; its description."""
        description: dict[str, Any] = await asyncio.to_thread(self._archive.ensure)
        return description

    async def _prepare(self, *, tracking: bool = False, archive: bool = False) -> None:
        """Check the tables once (LazyTable makes concurrent first uses wait for one check)."""
        if not self._checked.checked:
            await asyncio.to_thread(self._checked.ready)
        if archive and not self._archive.checked:
            await asyncio.to_thread(self._archive.ready)
        if tracking:
            await self.tracking.ready()  # the tracking store's own check: the table is described once

    async def _run(self, flow: Flow[T]) -> T:
        return await drive_async(flow, await self._client.get())

    # -- append ---------------------------------------------------------------------------

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
        with observed.appending(self.settings.events_table_name, expected_version) as span:
            stream_id, records = self._core.encode(aggregate_id, aggregate_type, events, expected_version, metadata)
            if records:
                await self._prepare()
            result = await self._run(self._core.append(stream_id, records, expected_version))
            observed.appended(span, result, len(records))
        return result

    async def delete_stream(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        expected_version: int | None = None,
        reason: str = "",
        reuse_id: bool = False,
    ) -> StreamDeletion:
        """Delete the stream's events; see [`DeletableStore`][dynamo_es.DeletableStore].

        One transaction seals the stream (its marks after the last event and over version 1),
        then its events go in transactions of 99 Deletes and a check of the mark, lowest versions first.
        """
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        if expected_version is not None:
            check_version("expected_version", expected_version)
        await self._prepare()
        return await self._run(self._core.delete_stream(stream_id, expected_version, reason, reuse_id=reuse_id))

    async def truncate_stream(self, aggregate_id: str, aggregate_type: str, before_version: int) -> StreamTruncation:
        """Remove the events before ``before_version``; see [`DeletableStore`][dynamo_es.DeletableStore].

        One conditional Put replaces version 1 with `StreamTruncated`; versions 2 to
        ``before_version - 1`` then go in transactions of 99 Deletes and a check of the mark.
        """
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("before_version", before_version, minimum=2)
        await self._prepare()
        return await self._run(self._core.truncate_stream(stream_id, before_version))

    async def archive_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move the stream's events to the archive table; see [`ArchivableStore`][dynamo_es.ArchivableStore].

        One transaction seals the stream (its marks, and version 1 into the archive), then its
        events move in transactions of 49 (a Put and a Delete each) and a check of the mark.
        """
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        await self._prepare(archive=True)
        return await self._run(self._core.archive_stream(stream_id))

    async def restore_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move an archived stream's events back; see [`ArchivableStore`][dynamo_es.ArchivableStore].

        The events move back in transactions of 49; a last one puts version 1 back and removes the marks.
        """
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        await self._prepare(archive=True)
        return await self._run(self._core.restore_stream(stream_id))

    async def load_archived(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """An archived stream's events, from the archive table; see [`ArchivableStore`][dynamo_es.ArchivableStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return []
        await self._prepare(archive=True)
        return await self._run(self._core.load_archived(stream_id, (from_version, to_version)))

    async def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams in one transaction, all or nothing; see [`EventStore`][dynamo_es.EventStore].

        Costs the events' write units twice (a transaction), plus 2 WCU per expected-version check
        and for the tracking record. Refused before anything is written when it would not fit.
        """
        with observed.committing(self._commit_tables(tracking)) as span:
            encoded = self._core.encode_commit(appends, tracking)
            observed.encoded_commit(span, encoded)
            if encoded or tracking is not None:
                await self._prepare(tracking=tracking is not None)
            result = await self._run(self._core.commit(encoded, tracking))
            observed.committed(span, result, sum(len(append.records) for append in encoded))
        return result

    def _commit_tables(self, tracking: Tracking | None) -> list[str]:
        events = self.settings.events_table_name
        return [events] if tracking is None else [events, self.settings.checkpoints_table_name]

    # -- read -----------------------------------------------------------------------------

    async def load(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version``, in version order.

        Reads are strongly consistent and follow DynamoDB's pages to the end.
        """
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return []  # bad input raised before any I/O; an empty range needs none
        with self._loading(aggregate_id, aggregate_type, from_version, to_version) as span:
            await self._prepare()
            events = await self._run(self._core.load(aggregate_id, aggregate_type, from_version, to_version))
            observed.loaded(span, len(events))
        return events

    async def load_history(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> EventHistory:
        """The events `load()` would give, decoded alone, with the version of the last (for a replay)."""
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return EventHistory((), 0)
        with self._loading(aggregate_id, aggregate_type, from_version, to_version) as span:
            await self._prepare()
            history = await self._run(self._core.load_history(aggregate_id, aggregate_type, from_version, to_version))
            observed.loaded(span, len(history))
        return history

    def _loading(self, aggregate_id: str, aggregate_type: str, from_version: int, to_version: int | None) -> Any:
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        return observed.loading(self.settings.events_table_name, stream_id, from_version, to_version)

    async def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        make_stream_id(aggregate_type, aggregate_id)
        await self._prepare()
        return await self._run(self._core.stream_version(aggregate_id, aggregate_type))

    async def tracked_version(self, tracking: Tracking) -> int:
        """The version recorded under ``tracking``'s name and stream; 0 for none."""
        await self._prepare(tracking=True)
        return await self._run(self._core.tracked_version(tracking))

    async def read_changes(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        reads: Selection | None = None,
    ) -> list[Change]:
        """The stream's events as changes (consistent reads); see [`ChangeReader`][dynamo_es.projections.ChangeReader].

        A record outside ``reads`` is not decoded; one that cannot be decoded carries its error.
        """
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return []
        await self._prepare()
        decoder = ChangeDecoder(self.serializer, reads)
        window = (from_version, to_version)
        return await self._run(self._core.read_changes(aggregate_id, aggregate_type, window, decoder))

    async def scan(self, *, segments: int = 4, page_size: int = 1000) -> AsyncIterator[list[StoredEvent]]:
        """Every stream's events, in pages, from a strongly consistent parallel Scan of the table.

        For rebuilding read models. Items that are not events are skipped. One stream's events
        usually arrive in version order; a projection's version rule copes when they do not.
        Leaving the iteration early stops the segment readers at once.
        """
        await self._prepare()
        table, codec = self.settings.events_table_name, self._core.codec
        read = event_reader(codec, self.serializer)
        pages = scan_events(self._client, table, codec, read, segments=segments, page_size=page_size)
        async with contextlib.aclosing(pages):  # leaving early stops the segment readers at once
            async for page in pages:
                yield page

    async def scan_changes(
        self, *, reads: Selection | None = None, segments: int = 4, page_size: int = 1000
    ) -> AsyncIterator[list[Change]]:
        """Every stream's events as changes, in pages, from the same parallel Scan as `scan()`.

        A record outside ``reads`` is not decoded (an unread change); one that cannot be decoded
        carries its error. A selection of aggregate types becomes a Scan filter: the other
        streams' items are not even sent. See [`ChangeReader`][dynamo_es.projections.ChangeReader].
        """
        await self._prepare()
        table, codec = self.settings.events_table_name, self._core.codec
        decoder = ChangeDecoder(self.serializer, reads)
        read, filters = change_reader(codec, decoder), selection_filter(codec, decoder.selection)
        pages = scan_events(self._client, table, codec, read, segments=segments, page_size=page_size, filters=filters)
        async with contextlib.aclosing(pages):
            async for page in pages:
                yield page

    # -- outbox ----------------------------------------------------------------------------

    async def undispatched(self, *, page_size: int = 100) -> AsyncIterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first, from the sparse ``outbox`` index.

        Reads ``page_size`` items per request, lazily; the index is eventually consistent, so
        an event written a moment ago may show up on the next call.
        """
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

    # -- changes ---------------------------------------------------------------------------

    async def subscribe_to_changes(
        self,
        position: StreamPosition | None = None,
        *,
        start_at: StartAt = "trim_horizon",
        on_trimmed: TrimmedPolicy = "restart",
        reads: Selection | None = None,
    ) -> AsyncSubscription:
        """A subscription to this table's DynamoDB stream; iterate it (it starts itself), or ``start()`` it first.

        Args:
            position: resume after this position (from ``subscription.position`` or a checkpoint).
            start_at: without a position, begin at the oldest kept record or at the newest.
            on_trimmed: when records after ``position`` were trimmed (older than 24 h), log
                and go on from the oldest kept record ("restart"), or raise ("raise").
            reads: what the reader reads: other records arrive as unread changes, their event
                data not decoded. A record that cannot be decoded (an unregistered type, a
                corrupt item) arrives as a change carrying its ``error``; iteration goes on.

        Raises:
            SubscriptionError: the table has no stream (``enable_streams`` off).
        """
        decode = record_decoder(self.serializer, self._core.codec, reads)
        arguments = subscription_arguments(
            self.settings, await self.ensure_table(), decode, position, start_at=start_at, on_trimmed=on_trimmed
        )
        return AsyncSubscription(LazyAsyncClient(self.settings, "dynamodbstreams"), **arguments)
