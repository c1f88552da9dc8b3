"""DynamoDBEventStore: streams of events in one DynamoDB table, appended with transactions."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
from pynamodb.connection import Connection, TableConnection
from pynamodb.transactions import TransactWrite

from .._events import EventMetadata, StoredEvent
from .._retry import backoff_delay
from .._serialization import EncodedEvent, EventSerializer
from .._store import AppendResult, check_version, encode_append, make_stream_id
from ..exceptions import EventStoreError, SubscriptionError, TransientStoreError
from ..projections._changes import StreamPosition
from ..projections._source import StartAt, TrimmedPolicy
from ..settings import EventStoreSettings
from ._errors import BOUNDARY_ERRORS, Failure, classify
from ._limits import MAX_ITEM_BYTES, MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS, plan_transactions, request_size
from ._model import EventItem, EventItemCodec, event_model
from ._outbox import count_undispatched, iter_undispatched, mark_dispatched
from ._scan import scan_events
from ._streams import Subscription, make_streams_client, record_decoder
from ._table import LazyTable

__all__ = ["DynamoDBEventStore"]

log = logging.getLogger("dynamo_es")

_TOKEN_NAMESPACE = uuid.UUID("6f1c3a52-6d0e-4a57-9d4b-2f5f3f0c9e11")


@attrs.define
class DynamoDBEventStore:
    """An :class:`EventStore` on a DynamoDB table; see the "Transactions and limits" docs page.

    Each transaction writes at most ``max_batch_size`` events within the 4 MB request limit;
    every Put is conditioned on its version slot being free, and the first transaction also
    checks that the expected version exists, so a stream never gets a gap or an overwrite.
    One transaction is atomic; an append that needs several is written in order and, should
    a later one fail, reports how far it got (``AppendResult.new_version``).

    The table is checked (and created, with ``create_table_if_not_exists``) on first use.

    Attributes:
        settings: the table, endpoint and behaviour (default: ``EventStoreSettings()``).
        serializer: the event codec (default: the global registry, :func:`make_converter`).
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    serializer: EventSerializer = attrs.field(factory=EventSerializer, kw_only=True)
    _model: type[EventItem] = attrs.field(init=False, repr=False)
    _codec: EventItemCodec = attrs.field(init=False, repr=False)
    _table: TableConnection = attrs.field(init=False, repr=False)
    _checked: LazyTable[EventItem] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        settings = self.settings
        self._model = event_model(settings)
        self._codec = EventItemCodec(self._model)
        self._table = self._model._get_connection()
        self._checked = LazyTable(
            self._model,
            settings.create_table_if_not_exists,
            {"HASH": (settings.partition_key_attribute, "S"), "RANGE": (settings.sort_key_attribute, "N")},
        )

    @property
    def model(self) -> type[EventItem]:
        """The PynamoDB model of this store's event items."""
        return self._model

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
        """Append events after ``expected_version``; see :class:`EventStore`."""
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
        attempt = _Attempt(self, stream_id, expected_version)
        if not records:
            return attempt.succeeded()
        self._prepare()
        if self.settings.use_transactional_write:
            return self._append_in_transactions(attempt, records)
        return self._append_singly(attempt, records)

    def _request_size(self, record: EncodedEvent) -> int:
        return request_size(record, self.settings.events_table_name)

    def _append_in_transactions(self, attempt: _Attempt, records: list[EncodedEvent]) -> AppendResult:
        capacity = min(self.settings.max_batch_size, MAX_TRANSACTION_ITEMS)
        needs_check = attempt.expected_version > 0
        batches = plan_transactions(
            records,
            capacity=capacity,
            first_capacity=min(capacity, MAX_TRANSACTION_ITEMS - 1) if needs_check else capacity,
            max_bytes=MAX_TRANSACTION_BYTES,
            size_of=self._request_size,
        )
        for index, batch in enumerate(batches):
            check = attempt.expected_version if index == 0 and needs_check else None
            write = functools.partial(self._commit_transaction, batch, check)
            failed = attempt.run(write, batch)
            if failed is not None:
                return failed
            attempt.written = batch[-1].version
        return attempt.succeeded()

    def _commit_transaction(self, batch: list[EncodedEvent], check_version: int | None) -> None:
        model = self._model
        token = _request_token(batch, check_version)
        with TransactWrite(connection=self._table.connection, client_request_token=token) as transaction:
            if check_version is not None:
                transaction.condition_check(model, batch[0].stream_id, check_version, condition=model.sk.exists())
            for record in batch:
                transaction.save(self._codec.to_model(record), condition=model.sk.does_not_exist())

    def _append_singly(self, attempt: _Attempt, records: list[EncodedEvent]) -> AppendResult:
        if attempt.expected_version > 0:
            previous = self._slot_ids(attempt.stream_id, attempt.expected_version, attempt.expected_version)
            if not previous:
                return attempt.conflicted(self._version_or_none(attempt.stream_id))
        for record in records:
            failed = attempt.run(functools.partial(self._put, record), [record])
            if failed is not None:
                return failed
            attempt.written = record.version
        return attempt.succeeded()

    def _put(self, record: EncodedEvent) -> None:
        self._codec.to_model(record).save(condition=self._model.sk.does_not_exist())

    # -- outbox ----------------------------------------------------------------------------

    def undispatched(self, *, page_size: int = 100) -> Iterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first, from the sparse ``outbox`` index.

        Reads ``page_size`` items per request, lazily; the index is eventually consistent, so
        an event written a moment ago may show up on the next call.
        """
        self._prepare()
        return iter_undispatched(self._table, self._codec, self.serializer.decode, page_size=page_size)

    def count_undispatched(self) -> int:
        """How many events are waiting in the outbox."""
        self._prepare()
        return count_undispatched(self._table, self._model)

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
        return scan_events(self._table, self._codec, self.serializer.decode, segments=segments, page_size=page_size)

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
        decode = self.serializer.decode
        return [decode(record) for record in self._query(stream_id, from_version, to_version)]

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
        sort_key = self._model.sk
        condition = sort_key >= from_version if to_version is None else sort_key.between(from_version, to_version)
        table = self._table
        decode = self._codec.decode
        records: list[EncodedEvent] = []
        start_key: dict[str, Any] | None = None
        try:
            while True:
                page = table.query(
                    stream_id,
                    range_key_condition=condition,
                    consistent_read=True,
                    exclusive_start_key=start_key,
                    limit=limit,
                    scan_index_forward=forward,
                )
                records.extend(decode(item) for item in page.get("Items", ()))
                start_key = page.get("LastEvaluatedKey")
                if not start_key or (limit is not None and len(records) >= limit):
                    return records
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read {stream_id}: {error}") from error

    def _last_version(self, stream_id: str) -> int:
        last = self._query(stream_id, 1, None, limit=1, forward=False)
        return last[0].version if last else 0

    def _version_or_none(self, stream_id: str) -> int | None:
        try:
            return self._last_version(stream_id)
        except EventStoreError:
            return None

    def _slot_ids(self, stream_id: str, first: int, last: int) -> list[str]:
        return [record.event_id for record in self._query(stream_id, first, last)]


@attrs.define
class _Attempt:
    """One append call's progress, and what each failed write means for its result."""

    store: DynamoDBEventStore
    stream_id: str
    expected_version: int
    written: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.written = self.expected_version

    def succeeded(self) -> AppendResult:
        return AppendResult(
            success=True,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
        )

    def conflicted(self, actual_version: int | None) -> AppendResult:
        return AppendResult(
            success=False,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
            conflict=True,
            actual_version=actual_version,
        )

    def failed(self, error: EventStoreError) -> AppendResult:
        return AppendResult(
            success=False,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
            error=error,
        )

    def run(self, write: Callable[[], Any], batch: list[EncodedEvent]) -> AppendResult | None:
        """Run ``write``, retrying transient failures; None on success, else the result to return."""
        settings = self.store.settings
        retries = 0
        while True:
            try:
                write()
                return None
            except BOUNDARY_ERRORS as error:
                kind, reason = classify(error)
                if kind is not Failure.TRANSIENT or retries >= settings.max_transient_retries:
                    return self._after_failure(kind, reason, error, batch, attempts=retries + 1)
            delay = backoff_delay(retries, settings.retry_base_delay_ms / 1000, settings.retry_max_delay_ms / 1000)
            retries += 1
            log.info("%s: %s, retry %d in %.3fs", self.stream_id, reason, retries, delay)
            time.sleep(delay)

    def _after_failure(
        self,
        kind: Failure,
        reason: str,
        error: BaseException,
        batch: list[EncodedEvent],
        *,
        attempts: int,
    ) -> AppendResult | None:
        if kind in (Failure.CONFLICT, Failure.IDEMPOTENCY_MISMATCH) and self._already_stored(batch):
            log.info(
                "%s: versions %d-%d already hold these events",
                self.stream_id,
                batch[0].version,
                batch[-1].version,
            )
            return None
        if kind is Failure.CONFLICT:
            return self.conflicted(self.store._version_or_none(self.stream_id))
        if kind is Failure.TRANSIENT:
            failure: EventStoreError = TransientStoreError(self.stream_id, reason, attempts)
        else:
            failure = EventStoreError(f"cannot append to {self.stream_id}: {reason}")
        failure.__cause__ = error
        return self.failed(failure)

    def _already_stored(self, batch: list[EncodedEvent]) -> bool:
        """Whether the batch's slots hold exactly its own event ids (an earlier try went through)."""
        try:
            stored = self.store._slot_ids(self.stream_id, batch[0].version, batch[-1].version)
        except EventStoreError:
            return False
        return stored == [record.event_id for record in batch]


def _request_token(batch: list[EncodedEvent], check_version: int | None) -> str:
    """DynamoDB's idempotency token for a transaction, derived from what it writes."""
    parts = [batch[0].stream_id, str(check_version), *(record.event_id for record in batch)]
    return str(uuid.uuid5(_TOKEN_NAMESPACE, "\n".join(parts)))
