"""DynamoDBEventStore: streams of events in one DynamoDB table, appended with transactions."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from pynamodb.connection import Connection, TableConnection

from .._events import EventMetadata, StoredEvent
from .._gc import collection_paused
from .._retry import backoff_delay
from .._serialization import EncodedEvent, EventSerializer
from .._store import (
    AppendResult,
    CommitResult,
    EncodedAppend,
    StreamAppend,
    Tracking,
    check_tracking,
    check_transaction_size,
    check_version,
    encode_append,
    encode_appends,
    make_stream_id,
)
from ..exceptions import EventStoreError, SubscriptionError, TransientStoreError
from ..projections._changes import StreamPosition
from ..projections._source import StartAt, TrimmedPolicy
from ..settings import EventStoreSettings
from . import _requests as requests
from ._attempt import Attempt
from ._checkpoints import DynamoDBCheckpointStore
from ._client import make_client
from ._commit import CommitRun, plan_commit
from ._errors import BOUNDARY_ERRORS, Failure, classify
from ._limits import MAX_ITEM_BYTES, MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS, plan_transactions, request_size
from ._model import EventItem, EventItemCodec, event_model
from ._outbox import OutboxIndex, claim, count_undispatched, iter_undispatched, mark_dispatched
from ._scan import scan_events
from ._streams import Subscription, make_streams_client, record_decoder
from ._table import LazyTable

__all__ = ["DynamoDBEventStore", "KnownVersions"]

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
    _table: TableConnection = attrs.field(init=False, repr=False)
    _checked: LazyTable[EventItem] = attrs.field(init=False, repr=False)
    _client: Any = attrs.field(init=False, repr=False)
    _known: KnownVersions = attrs.field(factory=lambda: KnownVersions(), init=False, repr=False)
    _tracking: DynamoDBCheckpointStore | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        settings = self.settings
        self._model = event_model(settings)
        self._codec = EventItemCodec(self._model)
        self._table = self._model._get_connection()
        self._client = make_client(settings)
        self._checked = LazyTable(
            self._model,
            settings.create_table_if_not_exists,
        )

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
        progress = self.tracking.load_progress(tracking.name, [tracking.stream_id])
        return progress[tracking.stream_id].version if tracking.stream_id in progress else 0

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
    ) -> Subscription:
        """A subscription to this table's DynamoDB stream; call ``start()`` then iterate it.

        Args:
            position: resume after this position (from ``subscription.position`` or a checkpoint).
            start_at: without a position, begin at the oldest kept record or at the newest.
            on_trimmed: when records after ``position`` were trimmed (older than 24 h), log
                and go on from the oldest kept record ("restart"), or raise ("raise").

        Raises:
            SubscriptionError: the table has no stream (``enable_streams`` off).
        """
        description = self.ensure_table()
        stream_arn = description.get("LatestStreamArn")
        if not description.get("StreamSpecification", {}).get("StreamEnabled") or not stream_arn:
            raise SubscriptionError(f"table {self.settings.events_table_name!r} has no stream; set enable_streams")
        return Subscription(
            make_streams_client(self.settings),
            stream_arn,
            record_decoder(self.serializer, self._codec),
            position or StreamPosition(),
            poll_interval=self.settings.streams_poll_interval_ms / 1000,
            start_at=start_at,
            on_trimmed=on_trimmed,
        )

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
        stream_id, records = encode_append(
            self.serializer,
            aggregate_id,
            aggregate_type,
            events,
            expected_version,
            metadata,
            size_of=self._codec.size,
            max_bytes=MAX_ITEM_BYTES,
        )
        attempt = Attempt(self, stream_id, expected_version)
        if not records:
            return attempt.succeeded()
        self._prepare()
        if self.settings.use_transactional_write:
            return self._append_in_transactions(attempt, records)
        return self._append_singly(attempt, records)

    def _request_size(self, record: EncodedEvent) -> int:
        return request_size(record, self.settings.events_table_name)

    def _append_in_transactions(self, attempt: Attempt, records: list[EncodedEvent]) -> AppendResult:
        capacity = min(self.settings.max_batch_size, MAX_TRANSACTION_ITEMS)
        check = self._expected_check(attempt, records, capacity)
        if check is False:
            return attempt.conflicted(self.version_or_none(attempt.stream_id))
        batches = plan_transactions(
            records,
            capacity=capacity,
            first_capacity=capacity - 1 if check else capacity,
            max_bytes=MAX_TRANSACTION_BYTES,
            size_of=self._request_size,
        )
        for index, batch in enumerate(batches):
            checked = attempt.expected_version if index == 0 and check else None
            failed = attempt.run(functools.partial(self._commit_transaction, batch, checked), batch)
            if failed is not None:
                return failed
            attempt.written = batch[-1].version
            self._known.saw(attempt.stream_id, attempt.written)
        return attempt.succeeded()

    def _expected_check(self, attempt: Attempt, records: list[EncodedEvent], capacity: int) -> bool | None:
        """How the first transaction makes sure ``expected_version`` exists, so no gap can open.

        True: a ConditionCheck inside it (a free slot). None: nothing to check (a new stream, or
        a version this store has already read or written: events are never deleted). When the
        check would take the slot of the 100th event, a consistent read of that version costs
        no slot: None if it exists, False if not (a conflict).
        """
        expected = attempt.expected_version
        if expected == 0 or self._known.has(attempt.stream_id, expected):
            return None
        if len(records) < capacity:
            return True
        return None if self.slot_ids(attempt.stream_id, expected, expected) else False

    def _commit_transaction(self, batch: list[EncodedEvent], check_version: int | None) -> None:
        with collection_paused():
            params = requests.transaction(self.settings.events_table_name, self._codec, batch, check_version)
        self._client.transact_write_items(**params)

    def _append_singly(self, attempt: Attempt, records: list[EncodedEvent]) -> AppendResult:
        expected = attempt.expected_version
        unknown = expected > 0 and not self._known.has(attempt.stream_id, expected)
        if unknown and not self.slot_ids(attempt.stream_id, expected, expected):
            return attempt.conflicted(self.version_or_none(attempt.stream_id))
        for record in records:
            failed = attempt.run(functools.partial(self._put, record), [record])
            if failed is not None:
                return failed
            attempt.written = record.version
            self._known.saw(attempt.stream_id, record.version)
        return attempt.succeeded()

    def _put(self, record: EncodedEvent) -> None:
        self._client.put_item(**requests.put_event(self.settings.events_table_name, self._codec, record))

    # -- several streams at once -----------------------------------------------------------

    def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams in one transaction, all or nothing; see [`EventStore`][dynamo_es.EventStore].

        Costs the events' write units twice (a transaction), plus 2 WCU per expected-version check
        and for the tracking record. Refused before anything is written when it would not fit.
        """
        check_tracking(tracking)
        encoded = encode_appends(self.serializer, appends, size_of=self._codec.size, max_bytes=MAX_ITEM_BYTES)
        encoded = [append for append in encoded if append.records]
        records = [record for append in encoded for record in append.records]
        size = sum(map(self._request_size, records))
        check_transaction_size(encoded, len(records) + (tracking is not None), size)
        run = CommitRun(self, encoded, tracking)
        if not encoded and tracking is None:
            return run.committed()
        self._prepare()
        checked, missing = self._commit_checks(
            encoded, room=MAX_TRANSACTION_ITEMS - len(records) - (tracking is not None)
        )
        if missing:  # found before sending: say what the transaction would have said
            return run.refused_before_sending()
        update = (tracking, self.tracking.tracking_update(tracking)) if tracking is not None else None
        plan = plan_commit(self.settings.events_table_name, self._codec, encoded, checked, update)
        result = run.run(functools.partial(self._client.transact_write_items, **plan.params), plan.owners)
        if result.success and not result.already_processed:
            for append in encoded:
                self._known.saw(append.stream_id, append.records[-1].version)
        return result

    def _commit_checks(self, encoded: list[EncodedAppend], *, room: int) -> tuple[set[str], set[str]]:
        """Which streams' expected versions a commit checks inside it, and which (read now) do not exist.

        Known versions need no check (events are never deleted); checks go inside the transaction
        while there is room, and the rest are read (consistently) before it.
        """
        unknown = [a for a in encoded if a.expected_version and not self._known.has(a.stream_id, a.expected_version)]
        inside = {a.stream_id for a in unknown[:room]}
        missing = {
            a.stream_id
            for a in unknown[room:]
            if not self.slot_ids(a.stream_id, a.expected_version, a.expected_version)
        }
        return inside, missing

    # -- outbox ----------------------------------------------------------------------------

    def undispatched(self, *, page_size: int = 100) -> Iterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first, from the sparse ``outbox`` index.

        Reads ``page_size`` items per request, lazily; the index is eventually consistent, so
        an event written a moment ago may show up on the next call.
        """
        self._prepare()
        return iter_undispatched(self._outbox_index(), self.serializer.decode, page_size=page_size)

    def count_undispatched(self) -> int:
        """How many events are waiting in the outbox."""
        self._prepare()
        return count_undispatched(self._outbox_index())

    def _outbox_index(self) -> OutboxIndex:
        return OutboxIndex(self._client, self.settings.events_table_name, self._codec)

    def claim(self, aggregate_id: str, aggregate_type: str, version: int, *, owner: str, lease_seconds: float) -> bool:
        """Claim an undispatched event for one dispatcher; see [`OutboxStore`][dynamo_es.OutboxStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        self._prepare()
        version = check_version("version", version, minimum=1)
        return claim(self._outbox_index(), stream_id, version, owner=owner, lease_seconds=lease_seconds)

    def mark_dispatched(self, aggregate_id: str, aggregate_type: str, version: int) -> bool:
        """Mark one event dispatched; False when it already was (marking twice is harmless)."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        self._prepare()
        return mark_dispatched(self._model, stream_id, check_version("version", version, minimum=1))

    # -- read -----------------------------------------------------------------------------

    def scan(self, *, segments: int = 4, page_size: int = 1000) -> Iterator[list[StoredEvent]]:
        """Every stream's events, in pages, from a strongly consistent parallel Scan of the table.

        For rebuilding read models. Items that are not events are skipped. One stream's events
        usually arrive in version order; a projection's version rule copes when they do not.
        """
        self._prepare()
        table = self.settings.events_table_name
        decode = self.serializer.decode
        return scan_events(self._client, table, self._codec, decode, segments=segments, page_size=page_size)

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
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("from_version", from_version, minimum=1)
        if to_version is not None:
            check_version("to_version", to_version)
            if to_version < from_version:
                return []
        self._prepare()
        return self.serializer.decode_all(self._query(stream_id, from_version, to_version))

    def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        self._prepare()
        return self._last_version(stream_id)

    def _query(
        self,
        stream_id: str,
        from_version: int,
        to_version: int | None,
        *,
        limit: int | None = None,
        forward: bool = True,
    ) -> list[EncodedEvent]:
        decode = self._codec.decode
        records: list[EncodedEvent] = []
        for items in self._pages(stream_id, (from_version, to_version), limit=limit, forward=forward):
            with collection_paused():
                records.extend(decode(item) for item in items)
        if records:
            self._known.saw(stream_id, max(records[0].version, records[-1].version))
        return records

    def _pages(
        self, stream_id: str, versions: tuple[int, int | None], *, limit: int | None, forward: bool
    ) -> Iterator[list[dict[str, Any]]]:
        """The items of a stream's version range, page by page, as DynamoDB sent them."""
        start_key: dict[str, Any] | None = None
        table, count = self.settings.events_table_name, 0
        while True:
            params = requests.query_page(
                table, self._codec, stream_id, versions, limit=limit, forward=forward, start_key=start_key
            )
            page = self._read(stream_id, params)
            items = page.get("Items", [])
            count += len(items)
            yield items
            start_key = page.get("LastEvaluatedKey")
            if not start_key or (limit is not None and count >= limit):
                return

    def _read(self, stream_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """One Query page, transient failures retried with the same backoff as writes."""
        settings = self.settings
        retry = 0
        while True:
            try:
                page: dict[str, Any] = self._client.query(**params)
            except BOUNDARY_ERRORS as error:
                kind, reason = classify(error)
                if kind is not Failure.TRANSIENT or retry >= settings.max_transient_retries:
                    raise _read_error(stream_id, reason, retry + 1, kind, error) from error
            else:
                return page
            delay = backoff_delay(retry, settings.retry_base_delay_ms / 1000, settings.retry_max_delay_ms / 1000)
            retry += 1
            log.info("%s: read failed (%s), retry %d in %.3fs", stream_id, reason, retry, delay)
            time.sleep(delay)

    def _last_version(self, stream_id: str) -> int:
        """The highest version in the stream, from the sort key alone (the item need not decode)."""
        for items in self._pages(stream_id, (1, None), limit=1, forward=False):
            for item in items:
                version = self._codec.sort_key_of(item)
                self._known.saw(stream_id, version)
                return version
        return 0

    def version_or_none(self, stream_id: str) -> int | None:
        """The stream's version, or None when it cannot be read (used after a failed append)."""
        try:
            return self._last_version(stream_id)
        except EventStoreError:
            return None

    def slot_ids(self, stream_id: str, first: int, last: int) -> list[str]:
        """The event ids stored in versions ``first`` to ``last`` of the stream (items need not decode)."""
        pages = self._pages(stream_id, (first, last), limit=None, forward=True)
        return [self._codec.event_id_of(item) for items in pages for item in items]


def _read_error(stream_id: str, reason: str, attempts: int, kind: Failure, error: BaseException) -> EventStoreError:
    if kind is Failure.TRANSIENT:
        return TransientStoreError(stream_id, reason, attempts, action="read")
    return EventStoreError(f"cannot read {stream_id}: {reason}")


@attrs.define
class KnownVersions:
    """The highest version this process has seen stored, per stream (bounded; events are never deleted)."""

    limit: int = 100_000
    _versions: dict[str, int] = attrs.field(factory=dict, init=False)

    def saw(self, stream_id: str, version: int) -> None:
        """Remember that ``version`` of the stream exists."""
        if version > self._versions.get(stream_id, 0):
            if len(self._versions) >= self.limit:
                self._versions.clear()
            self._versions[stream_id] = version

    def has(self, stream_id: str, version: int) -> bool:
        """Whether ``version`` of the stream is known to exist."""
        return self._versions.get(stream_id, 0) >= version
