"""DynamoDBEventStore: streams of events in one DynamoDB table, appended with transactions."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import attrs
from pynamodb.connection import Connection, TableConnection

from ..core.changes import Change, StreamPosition
from ..core.reading import ChangeDecoder, Selection
from ..core.serialization import EventSerializer
from ..domain.events import EventMetadata, StoredEvent
from ..ports.source import StartAt, TrimmedPolicy
from ..ports.store import AppendResult, CommitResult, StreamAppend, Tracking, check_version, make_stream_id
from ..settings import EventStoreSettings
from ._checkpoints import DynamoDBCheckpointStore, checkpoint_model
from ._scan import change_reader, event_reader, scan_events, selection_filter
from ._streams import Subscription, make_streams_client, record_decoder, subscription_arguments
from .flows.base import Flow, drive
from .flows.outbox import OutboxIndex, OutboxReader
from .flows.store import KnownVersions, StoreCore
from .schema.model import EventItem, EventItemCodec, event_model
from .schema.table import LazyTable
from .wire.client import make_client

__all__ = ["DynamoDBEventStore", "KnownVersions"]

T = TypeVar("T")

log = logging.getLogger("dynamo_es")


@attrs.define
class DynamoDBEventStore:
    """An [`EventStore`][dynamo_es.EventStore] on a DynamoDB table; see the "Transactions and limits" docs page.

    Each transaction writes at most ``max_batch_size`` events within the 4 MB request limit;
    every Put is conditioned on its version slot being free, and the first transaction also
    checks that the expected version exists, so a stream never gets a gap or an overwrite.
    One transaction is atomic; an append that needs several is written in order and, should
    a later one fail, reports how far it got (``AppendResult.new_version``).

    The table is checked (and created, with ``create_table_if_not_exists``) on first use.

    Attributes:
        settings: the table, endpoint and behaviour (default: ``EventStoreSettings()``).
        serializer: the event codec (default: the global registry, [`make_converter()`][dynamo_es.make_converter]).
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    serializer: EventSerializer = attrs.field(factory=EventSerializer, kw_only=True)
    _model: type[EventItem] = attrs.field(init=False, repr=False)
    _codec: EventItemCodec = attrs.field(init=False, repr=False)
    _outbox: OutboxIndex = attrs.field(init=False, repr=False)
    _table: TableConnection = attrs.field(init=False, repr=False)
    _checked: LazyTable[EventItem] = attrs.field(init=False, repr=False)
    _client: Any = attrs.field(init=False, repr=False)
    _core: StoreCore = attrs.field(init=False, repr=False)
    _tracking: DynamoDBCheckpointStore | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        settings = self.settings
        self._model = event_model(settings)
        self._codec = EventItemCodec(self._model)
        self._outbox = OutboxIndex(settings.events_table_name, self._codec)
        self._table = self._model._get_connection()
        self._client = make_client(settings)
        self._checked = LazyTable(self._model, settings.create_table_if_not_exists)
        tracking_attribute = checkpoint_model(settings).version.attr_name
        self._core = StoreCore(settings, self.serializer, self._codec, self._tracking_update, tracking_attribute)

    def _tracking_update(self, tracking: Tracking) -> dict[str, Any]:
        return self.tracking.tracking_update(tracking)

    def _run(self, flow: Flow[T]) -> T:
        return drive(flow, self._client)

    @property
    def model(self) -> type[EventItem]:
        """The PynamoDB model of this store's event items."""
        return self._model

    @property
    def client(self) -> Any:
        """The botocore client the store's appends and reads go through; not a general-purpose client.

        For Query, Scan, GetRecords, PutItem and TransactWriteItems it sends the parameters as
        given (JSON types only: no bytes) and returns DynamoDB's JSON as sent (binary values stay
        base64 text); every other operation behaves as botocore's. Use ``connection.client`` or
        your own client for anything else.
        """
        return self._client

    @property
    def tracking(self) -> DynamoDBCheckpointStore:
        """Where `append_many()` records [`Tracking`][dynamo_es.Tracking]: the checkpoints table of the same settings.

        A process manager uses it as its checkpoint store.
        """
        if self._tracking is None:
            self._tracking = DynamoDBCheckpointStore(self.settings)
        return self._tracking

    def tracked_version(self, tracking: Tracking) -> int:
        """The version recorded under ``tracking``'s name and stream; 0 for none."""
        return self._run(self._core.tracked_version(tracking))

    @property
    def connection(self) -> Connection:
        """The PynamoDB connection every request goes through (its ``client`` is botocore's)."""
        return self._table.connection

    def ensure_table(self) -> dict[str, Any]:
        """Check the events table, creating it if missing and allowed; return its description."""
        return self._checked.ensure()

    def _prepare(self) -> None:
        self._checked.ready()

    def subscribe_to_changes(
        self,
        position: StreamPosition | None = None,
        *,
        start_at: StartAt = "trim_horizon",
        on_trimmed: TrimmedPolicy = "restart",
        reads: Selection | None = None,
    ) -> Subscription:
        """A subscription to this table's DynamoDB stream; call ``start()`` then iterate it.

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
        decode = record_decoder(self.serializer, self._codec, reads)
        arguments = subscription_arguments(
            self.settings, self.ensure_table(), decode, position, start_at=start_at, on_trimmed=on_trimmed
        )
        return Subscription(make_streams_client(self.settings), **arguments)

    # -- append ---------------------------------------------------------------------------

    def append(
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
            self._prepare()
        return self._run(self._core.append(stream_id, records, expected_version))

    # -- several streams at once -----------------------------------------------------------

    def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams in one transaction, all or nothing; see [`EventStore`][dynamo_es.EventStore].

        Costs the events' write units twice (a transaction), plus 2 WCU per expected-version check
        and for the tracking record. Refused before anything is written when it would not fit.
        """
        encoded = self._core.encode_commit(appends, tracking)
        if encoded or tracking is not None:
            self._prepare()
        return self._run(self._core.commit(encoded, tracking))

    # -- outbox ----------------------------------------------------------------------------

    def undispatched(self, *, page_size: int = 100) -> Iterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first, from the sparse ``outbox`` index.

        Reads ``page_size`` items per request, lazily; the index is eventually consistent, so
        an event written a moment ago may show up on the next call.
        """
        self._prepare()
        reader = OutboxReader(self._outbox, page_size)
        while (record := self._run(reader.next())) is not None:
            yield self.serializer.decode(record)

    def count_undispatched(self) -> int:
        """How many events are waiting in the outbox."""
        self._prepare()
        return self._run(self._outbox.count())

    def claim(self, aggregate_id: str, aggregate_type: str, version: int, *, owner: str, lease_seconds: float) -> bool:
        """Claim an undispatched event for one dispatcher; see [`OutboxStore`][dynamo_es.OutboxStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        version = check_version("version", version, minimum=1)
        self._prepare()
        return self._run(self._outbox.claim(stream_id, version, owner=owner, lease_seconds=lease_seconds))

    def mark_dispatched(self, aggregate_id: str, aggregate_type: str, version: int) -> bool:
        """Mark one event dispatched; False when it already was (marking twice is harmless)."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        version = check_version("version", version, minimum=1)
        self._prepare()
        return self._run(self._outbox.mark_dispatched(stream_id, version))

    # -- read -----------------------------------------------------------------------------

    def scan(self, *, segments: int = 4, page_size: int = 1000) -> Iterator[list[StoredEvent]]:
        """Every stream's events, in pages, from a strongly consistent parallel Scan of the table.

        For rebuilding read models. Items that are not events are skipped. One stream's events
        usually arrive in version order; a projection's version rule copes when they do not.
        """
        self._prepare()
        table, read = self.settings.events_table_name, event_reader(self._codec, self.serializer)
        return scan_events(self._client, table, self._codec, read, segments=segments, page_size=page_size)

    def scan_changes(
        self, *, reads: Selection | None = None, segments: int = 4, page_size: int = 1000
    ) -> Iterator[list[Change]]:
        """Every stream's events as changes, in pages, from the same parallel Scan as `scan()`.

        A record outside ``reads`` is not decoded (an unread change); one that cannot be decoded
        carries its error. A selection of aggregate types becomes a Scan filter: the other
        streams' items are not even sent. See [`ChangeReader`][dynamo_es.projections.ChangeReader].
        """
        self._prepare()
        table = self.settings.events_table_name
        decoder = ChangeDecoder(self.serializer, reads)
        read, filters = change_reader(self._codec, decoder), selection_filter(self._codec, decoder.selection)
        return scan_events(
            self._client, table, self._codec, read, segments=segments, page_size=page_size, filters=filters
        )

    def read_changes(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        reads: Selection | None = None,
    ) -> list[Change]:
        """The stream's events as changes (consistent reads); see `ChangeReader`."""
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return []
        self._prepare()
        decoder = ChangeDecoder(self.serializer, reads)
        return self._run(self._core.read_changes(aggregate_id, aggregate_type, (from_version, to_version), decoder))

    def load(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version``, in version order.

        Reads are strongly consistent and follow DynamoDB's 1 MB pages to the end.
        """
        if not self._core.check_load(aggregate_id, aggregate_type, from_version, to_version):
            return []  # bad input raised before any I/O; an empty range needs none
        self._prepare()
        return self._run(self._core.load(aggregate_id, aggregate_type, from_version, to_version))

    def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        make_stream_id(aggregate_type, aggregate_id)
        self._prepare()
        return self._run(self._core.stream_version(aggregate_id, aggregate_type))
