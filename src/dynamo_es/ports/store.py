"""The event store protocol, append results, and the input checks every store shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..core.gc import collection_paused
from ..core.serialization import EncodedEvent, EventSerializer
from ..domain.events import EventHistory, EventMetadata, NewEvent, StoredEvent
from ..domain.streams import MAX_STREAM_ID_BYTES, make_stream_id
from ..exceptions import (
    ConcurrencyError,
    Conflict,
    DynamoESError,
    EventTooLargeError,
    InvalidStreamError,
    TransactionTooLargeError,
)
from ..observability.tracing import current_traceparent

__all__ = [
    "MAX_STREAM_ID_BYTES",
    "MAX_TRANSACTION_BYTES",
    "MAX_TRANSACTION_ITEMS",
    "AppendResult",
    "AsyncEventStore",
    "AsyncReplayableStore",
    "CommitResult",
    "EncodedAppend",
    "EventStore",
    "ReplayableStore",
    "StreamAppend",
    "Tracking",
    "check_tracking",
    "check_transaction_size",
    "check_version",
    "committed",
    "encode_append",
    "encode_appends",
    "encoded_size",
    "make_stream_id",
]

MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's limit of items in one transaction; every store holds a commit to it."""
MAX_TRANSACTION_BYTES = 4_000_000
"""The byte budget of one transaction: below DynamoDB's 4 MB request limit."""


def check_version(name: str, value: int, *, minimum: int = 0) -> int:
    """``value`` if it is an integer >= ``minimum``; else `InvalidStreamError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidStreamError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return value


@attrs.frozen(kw_only=True)
class AppendResult:
    """What an append did.

    Attributes:
        success: every event was written.
        stream_id: the stream appended to.
        expected_version: the version the caller expected.
        new_version: the stream's version after what this call wrote (on failure, the last
            version this call did write, which is ``expected_version`` when nothing was).
        conflict: another writer got there first.
        actual_version: on a conflict, the stream's version as then read (None if unknown).
        error: on a failure that is not a conflict, the error.
        outcome_unknown: the last batch may or may not be written (``error`` is an
            `OutcomeUnknownError`); retrying the same append is safe.
    """

    success: bool
    stream_id: str
    expected_version: int
    new_version: int
    conflict: bool = False
    actual_version: int | None = None
    error: DynamoESError | None = None
    outcome_unknown: bool = False

    def raise_for_failure(self) -> AppendResult:
        """Return ``self`` on success; raise `ConcurrencyError` or the error otherwise."""
        if self.success:
            return self
        if self.conflict:
            raise ConcurrencyError(
                self.stream_id, self.expected_version, self.actual_version, written_version=self.new_version
            )
        assert self.error is not None
        raise self.error


@attrs.frozen
class StreamAppend:
    """Events to append to one stream, as part of a multi-stream commit.

    Attributes:
        aggregate_id, aggregate_type: the stream.
        events: registered event instances or [`NewEvent`][dynamo_es.NewEvent] envelopes.
        expected_version: the stream's version they go after (0 for a new stream).
        metadata: laid over each event's own.
    """

    aggregate_id: str
    aggregate_type: str
    events: Sequence[Any]
    expected_version: int
    metadata: EventMetadata | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Tracking:
    """A record that ``name`` has processed ``version`` of upstream stream ``stream_id``.

    Committed in the same transaction as the events a process manager saves in reaction, so a
    redelivered upstream event finds it and changes nothing. Tracking only moves forward.
    """

    name: str
    stream_id: str
    version: int


@attrs.frozen(kw_only=True)
class CommitResult:
    """What a multi-stream commit did: all of it, or nothing.

    Attributes:
        results: one [`AppendResult`][dynamo_es.AppendResult] per append that had events, in the order given.
        already_processed: the commit's [`Tracking`][dynamo_es.Tracking] was already recorded (a redelivery);
            nothing was written, which is success.
        conflicts: the streams whose expected version did not hold; nothing was written.
        error: a failure that is not a conflict (nothing written, or ``outcome_unknown``).
        outcome_unknown: the transaction may or may not be written; retrying the same commit is safe.
    """

    results: tuple[AppendResult, ...] = ()
    already_processed: bool = False
    conflicts: tuple[Conflict, ...] = ()
    error: DynamoESError | None = None
    outcome_unknown: bool = False

    @property
    def success(self) -> bool:
        """Everything was written (or, with ``already_processed``, had been before)."""
        return not self.conflicts and self.error is None

    def raise_for_failure(self) -> CommitResult:
        """Return ``self`` on success; raise `ConcurrencyError` (naming every conflict) or the error."""
        if self.conflicts:
            first = self.conflicts[0]
            raise ConcurrencyError(
                first.stream_id, first.expected_version, first.actual_version, conflicts=self.conflicts
            )
        if self.error is not None:
            raise self.error
        return self


@runtime_checkable
class EventStore(Protocol):
    """Storage of event streams, one per aggregate. Implemented by every store."""

    serializer: EventSerializer

    def append(
        self,
        aggregate_id: str,
        aggregate_type: str,
        events: Sequence[Any],
        expected_version: int,
        *,
        metadata: EventMetadata | None = None,
    ) -> AppendResult:
        """Append events after ``expected_version`` (0 for a new stream).

        ``events`` are registered event instances or [`NewEvent`][dynamo_es.NewEvent] envelopes; ``metadata``
        is laid over each event's own. Bad input raises before anything is written.
        """
        ...

    def load(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version`` (inclusive), in order."""
        ...

    def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        ...

    def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams in one transaction: all or nothing.

        Each stream keeps its own optimistic concurrency check; a commit that would not fit one
        DynamoDB transaction (100 items, 4 MB) raises `TransactionTooLargeError` before
        anything is written. With ``tracking``, the tracking record is written in the same
        transaction, and a commit whose tracking is already recorded writes nothing and
        reports ``already_processed``.
        """
        ...


@runtime_checkable
class ReplayableStore(Protocol):
    """A store that can hand a replay the decoded events alone: every store of dynamo-es.

    The repositories use it when a store has it (a store of your own need not), and ``load()``
    otherwise: building a [`StoredEvent`][dynamo_es.StoredEvent] per event costs as much as
    decoding it.
    """

    def load_history(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> EventHistory:
        """The events ``load()`` would give, decoded alone, with the version of the last."""
        ...


def encode_append(
    serializer: EventSerializer,
    aggregate_id: str,
    aggregate_type: str,
    events: Iterable[Any],
    expected_version: int,
    metadata: EventMetadata | None,
    *,
    size_of: Callable[[EncodedEvent], int],
    max_bytes: int,
) -> tuple[str, list[EncodedEvent]]:
    """Validate and encode an append's events, numbering them after ``expected_version``.

    Returns the stream id and the encoded events.

    Raises:
        InvalidStreamError, SerializationError, EventTypeError: bad input.
        EventTooLargeError: an event would exceed ``max_bytes`` by the store's ``size_of``.
    """
    stream_id = make_stream_id(aggregate_type, aggregate_id)
    check_version("expected_version", expected_version)
    trace_parent = None if metadata is not None and metadata.trace_parent else current_traceparent()
    stamped = metadata if trace_parent is None else attrs.evolve(metadata or EventMetadata(), trace_parent=trace_parent)
    encoded: list[EncodedEvent] = []
    with collection_paused():  # everything made here lives until it is stored: no cycles to collect
        for offset, item in enumerate(events, start=1):
            envelope = _envelope(item, metadata, stamped)
            if not isinstance(envelope.event_id, str) or not envelope.event_id:
                raise InvalidStreamError(f"event_id must be a non-empty string, not {envelope.event_id!r}")
            version = expected_version + offset
            record = serializer.encode(
                envelope, aggregate_type=aggregate_type, aggregate_id=aggregate_id, version=version
            )
            size = size_of(record)
            if size > max_bytes:
                raise EventTooLargeError(record.stream_id, record.version, record.event_type, size, max_bytes)
            encoded.append(record)
    return stream_id, encoded


def _envelope(item: Any, metadata: EventMetadata | None, stamped: EventMetadata | None) -> NewEvent:
    """``item`` in its envelope, ``metadata`` laid over the envelope's own.

    ``stamped`` is ``metadata`` with the current span's traceparent: a plain event takes it as
    is; an envelope keeps a traceparent of its own, else takes the span's.
    """
    if not isinstance(item, NewEvent):
        return NewEvent(item) if stamped is None else NewEvent(item, metadata=stamped)
    if stamped is None:
        return item
    merged = item.metadata.merged_with(metadata) if metadata is not None else item.metadata
    if not merged.trace_parent and stamped.trace_parent:
        merged = attrs.evolve(merged, trace_parent=stamped.trace_parent)
    return attrs.evolve(item, metadata=merged)


def encoded_size(record: EncodedEvent) -> int:
    """The UTF-8 bytes of ``record``'s values: a store-neutral measure of an event's size."""
    return sum(len(text) if text.isascii() else len(text.encode()) for text in record.texts()) + len(
        str(record.version)
    )


@attrs.frozen
class EncodedAppend:
    """One stream's part of a commit, validated and encoded."""

    stream_id: str
    expected_version: int
    records: list[EncodedEvent]


def encode_appends(
    serializer: EventSerializer,
    appends: Sequence[StreamAppend],
    *,
    size_of: Callable[[EncodedEvent], int],
    max_bytes: int,
) -> list[EncodedAppend]:
    """Validate and encode every append of a commit; one stream may appear once only.

    Raises:
        InvalidStreamError: bad input, or a stream named twice.
        SerializationError, EventTypeError, EventTooLargeError: as for `encode_append()`.
    """
    encoded: list[EncodedAppend] = []
    seen: set[str] = set()
    for append in appends:
        if not isinstance(append, StreamAppend):
            raise InvalidStreamError(f"append_many takes StreamAppend values, not {type(append).__name__}")
        stream_id, records = encode_append(
            serializer,
            append.aggregate_id,
            append.aggregate_type,
            append.events,
            append.expected_version,
            append.metadata,
            size_of=size_of,
            max_bytes=max_bytes,
        )
        if stream_id in seen:
            raise InvalidStreamError(f"{stream_id} appears twice in one commit; put its events in one append")
        seen.add(stream_id)
        encoded.append(EncodedAppend(stream_id, append.expected_version, records))
    return encoded


def committed(appends: Sequence[EncodedAppend]) -> CommitResult:
    """The result of a commit that wrote every one of ``appends``."""
    return CommitResult(
        results=tuple(
            AppendResult(
                success=True,
                stream_id=append.stream_id,
                expected_version=append.expected_version,
                new_version=append.expected_version + len(append.records),
            )
            for append in appends
        )
    )


def check_tracking(tracking: Tracking | None) -> None:
    """Refuse a malformed tracking record before anything is written.

    The name becomes a partition key (2,048 bytes at most); the upstream stream id may be any
    legal stream id (2,048 bytes: a checkpoint store keys long ones by their hash).
    """
    if tracking is None:
        return
    if not isinstance(tracking.name, str) or not tracking.name:
        raise InvalidStreamError(f"tracking name must be a non-empty string, not {tracking.name!r}")
    if not isinstance(tracking.stream_id, str) or ":" not in tracking.stream_id:
        raise InvalidStreamError(f"tracking stream id must look like 'Type:id', not {tracking.stream_id!r}")
    for label, text, limit in (("name", tracking.name, 2048), ("stream id", tracking.stream_id, MAX_STREAM_ID_BYTES)):
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > limit:
            raise InvalidStreamError(
                f"tracking {label} {text[:40]!r}... is {size:,} bytes of UTF-8; the limit is {limit:,}"
            )
    check_version("tracking version", tracking.version, minimum=1)


def check_transaction_size(
    appends: Sequence[EncodedAppend], items: int, size: int, *, streams: tuple[str, ...] = ()
) -> None:
    """Refuse a commit of ``items`` items and ``size`` bytes that one transaction cannot hold."""
    if items > MAX_TRANSACTION_ITEMS or size > MAX_TRANSACTION_BYTES:
        raise TransactionTooLargeError(
            items,
            size,
            max_items=MAX_TRANSACTION_ITEMS,
            max_bytes=MAX_TRANSACTION_BYTES,
            streams=streams or tuple(append.stream_id for append in appends),
        )


@runtime_checkable
class AsyncEventStore(Protocol):
    """[`EventStore`][dynamo_es.EventStore] with awaitable methods: the same semantics, non-blocking."""

    serializer: EventSerializer

    async def append(
        self,
        aggregate_id: str,
        aggregate_type: str,
        events: Sequence[Any],
        expected_version: int,
        *,
        metadata: EventMetadata | None = None,
    ) -> AppendResult:
        """Append events after ``expected_version`` (0 for a new stream)."""
        ...

    async def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams in one transaction: all or nothing."""
        ...

    async def load(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version`` (inclusive), in order."""
        ...

    async def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event; 0 when it has none."""
        ...


@runtime_checkable
class AsyncReplayableStore(Protocol):
    """[`ReplayableStore`][dynamo_es.ReplayableStore] with an awaitable method."""

    async def load_history(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> EventHistory:
        """The events ``load()`` would give, decoded alone, with the version of the last."""
        ...
