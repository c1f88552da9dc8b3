"""The event store protocol, append results, and the input checks every store shares."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ._events import EventMetadata, NewEvent, StoredEvent
from ._serialization import EncodedEvent, EventSerializer
from .exceptions import ConcurrencyError, DynamoESError, EventTooLargeError, InvalidStreamError

__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_TRANSACTION_BYTES",
    "MAX_TRANSACTION_ITEMS",
    "AppendResult",
    "EventStore",
    "backoff_delay",
    "encode_append",
    "item_size",
    "make_stream_id",
    "plan_transactions",
]

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit (attribute names plus values)."""
MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's limit of actions in one TransactWriteItems call."""
MAX_TRANSACTION_BYTES = 4_000_000
"""Budget for one transaction's request payload: below DynamoDB's 4 MB (4 MiB as enforced)."""

_MAX_ID_LENGTH = 1024


def backoff_delay(retry: int, base_seconds: float, max_seconds: float) -> float:
    """Exponential backoff with full jitter: retry n (from 0) waits up to ``base * 2**n``, capped."""
    return random.uniform(0, min(max_seconds, base_seconds * 2**retry))  # noqa: S311 (jitter, not crypto)


def make_stream_id(aggregate_type: str, aggregate_id: str) -> str:
    """The partition key ``{aggregate_type}:{aggregate_id}``, after checking both parts.

    Raises:
        InvalidStreamError: a part is empty, not a string, too long, or the type contains ``:``
            (which would make the key ambiguous).
    """
    for label, value in (("aggregate type", aggregate_type), ("aggregate id", aggregate_id)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidStreamError(f"{label} must be a non-empty string, not {value!r}")
        if len(value) > _MAX_ID_LENGTH:
            raise InvalidStreamError(f"{label} is longer than {_MAX_ID_LENGTH} characters")
    if ":" in aggregate_type:
        raise InvalidStreamError(f"aggregate type {aggregate_type!r} must not contain ':'")
    return f"{aggregate_type}:{aggregate_id}"


def check_version(name: str, value: int, *, minimum: int = 0) -> int:
    """``value`` if it is an integer >= ``minimum``; else :class:`InvalidStreamError`."""
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
    """

    success: bool
    stream_id: str
    expected_version: int
    new_version: int
    conflict: bool = False
    actual_version: int | None = None
    error: DynamoESError | None = None

    def raise_for_failure(self) -> AppendResult:
        """Return ``self`` on success; raise :class:`ConcurrencyError` or the error otherwise."""
        if self.success:
            return self
        if self.conflict:
            raise ConcurrencyError(self.stream_id, self.expected_version, self.actual_version)
        assert self.error is not None
        raise self.error


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

        ``events`` are registered event instances or :class:`NewEvent` envelopes; ``metadata``
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


def encode_append(
    serializer: EventSerializer,
    aggregate_id: str,
    aggregate_type: str,
    events: Iterable[Any],
    expected_version: int,
    metadata: EventMetadata | None,
    *,
    size_of: Callable[[EncodedEvent], int],
) -> tuple[str, list[EncodedEvent]]:
    """Validate and encode an append's events, numbering them after ``expected_version``.

    Returns the stream id and the encoded events.

    Raises:
        InvalidStreamError, SerializationError, EventTypeError: bad input.
        EventTooLargeError: an event would exceed :data:`MAX_ITEM_BYTES` as an item.
    """
    stream_id = make_stream_id(aggregate_type, aggregate_id)
    check_version("expected_version", expected_version)
    encoded: list[EncodedEvent] = []
    for offset, item in enumerate(events, start=1):
        envelope = item if isinstance(item, NewEvent) else NewEvent(item)
        if metadata is not None:
            envelope = attrs.evolve(envelope, metadata=envelope.metadata.merged_with(metadata))
        record = serializer.encode(
            envelope,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            version=expected_version + offset,
        )
        size = size_of(record)
        if size > MAX_ITEM_BYTES:
            raise EventTooLargeError(record.stream_id, record.version, record.event_type, size, MAX_ITEM_BYTES)
        encoded.append(record)
    return stream_id, encoded


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _json_length(text: str) -> int:
    """The length of ``text`` as a JSON string literal, as botocore sends it (ASCII-escaped)."""
    if text.isascii() and text.isprintable():  # Base64, ids, timestamps: no copy, no escapes but " and \
        return len(text) + 2 + text.count('"') + text.count("\\")
    return len(json.dumps(text))


def item_size(record: EncodedEvent, *, partition_key: str = "pk", sort_key: str = "sk") -> int:
    """The size DynamoDB counts for ``record`` as an item: attribute names plus values."""
    texts = (
        (partition_key, record.stream_id),
        ("eventId", record.event_id),
        ("aggregateId", record.aggregate_id),
        ("aggregateType", record.aggregate_type),
        ("eventType", record.event_type),
        ("timestamp", record.timestamp),
        ("eventData", record.event_data),
        ("metadata", record.metadata),
    )
    size = sum(len(name) + _utf8_length(value) for name, value in texts)
    number = len(str(record.version)) // 2 + 2
    size += len(sort_key) + number + len("version") + number
    return size + len("isDispatched") + 1 + len("outboxPending") + 3


def request_size(record: EncodedEvent, table_name: str) -> int:
    """An upper estimate of the bytes one conditional Put of ``record`` adds to a request."""
    strings = (
        record.stream_id,
        record.event_id,
        record.aggregate_id,
        record.aggregate_type,
        record.event_type,
        record.timestamp,
        record.event_data,
        record.metadata,
    )
    payload = sum(_json_length(value) for value in strings)
    return payload + len(table_name) + 400


def plan_transactions(
    records: Sequence[EncodedEvent],
    *,
    capacity: int,
    first_capacity: int,
    max_bytes: int,
    size_of: Callable[[EncodedEvent], int],
) -> list[list[EncodedEvent]]:
    """Split ``records`` into consecutive transactions within both item and byte budgets.

    The first transaction takes at most ``first_capacity`` events (it may carry a condition
    check too), later ones ``capacity``; each stays within ``max_bytes`` by ``size_of``.
    """
    batches: list[list[EncodedEvent]] = []
    current: list[EncodedEvent] = []
    current_bytes = 0
    room = max(1, first_capacity)
    for record in records:
        size = size_of(record)
        if current and (len(current) >= room or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes, room = [], 0, capacity
        current.append(record)
        current_bytes += size
    if current:
        batches.append(current)
    return batches
