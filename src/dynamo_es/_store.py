"""The event store protocol, append results, and the input checks every store shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ._events import EventMetadata, NewEvent, StoredEvent
from ._gc import collection_paused
from ._serialization import EncodedEvent, EventSerializer
from .exceptions import ConcurrencyError, DynamoESError, EventTooLargeError, InvalidStreamError

__all__ = [
    "MAX_STREAM_ID_BYTES",
    "AppendResult",
    "EventStore",
    "check_version",
    "encode_append",
    "encoded_size",
    "make_stream_id",
]

MAX_STREAM_ID_BYTES = 2048
"""DynamoDB's partition key limit, in bytes of UTF-8 (not characters)."""


def make_stream_id(aggregate_type: str, aggregate_id: str) -> str:
    """The partition key ``{aggregate_type}:{aggregate_id}``, after checking both parts.

    Raises:
        InvalidStreamError: a part is empty or not a string, the type contains ``:`` (which
            would make the key ambiguous), a part is not valid Unicode text (a lone surrogate),
            or the key is over DynamoDB's 2,048 bytes of UTF-8.
    """
    for label, value in (("aggregate type", aggregate_type), ("aggregate id", aggregate_id)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidStreamError(f"{label} must be a non-empty string, not {value!r}")
    if ":" in aggregate_type:
        raise InvalidStreamError(f"aggregate type {aggregate_type!r} must not contain ':'")
    stream_id = f"{aggregate_type}:{aggregate_id}"
    if stream_id.isascii():
        size = len(stream_id)
    else:
        try:
            size = len(stream_id.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise InvalidStreamError(f"stream id {stream_id!r} is not valid Unicode text: {error.reason}") from None
    if size > MAX_STREAM_ID_BYTES:
        raise InvalidStreamError(
            f"stream id {stream_id[:40]!r}... is {size:,} bytes of UTF-8; DynamoDB's limit is {MAX_STREAM_ID_BYTES:,}"
        )
    return stream_id


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
        outcome_unknown: the last batch may or may not be written (``error`` is an
            :class:`~dynamo_es.exceptions.OutcomeUnknownError`); retrying the same append is safe.
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
        """Return ``self`` on success; raise :class:`ConcurrencyError` or the error otherwise."""
        if self.success:
            return self
        if self.conflict:
            raise ConcurrencyError(
                self.stream_id, self.expected_version, self.actual_version, written_version=self.new_version
            )
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
    encoded: list[EncodedEvent] = []
    with collection_paused():  # everything made here lives until it is stored: no cycles to collect
        for offset, item in enumerate(events, start=1):
            envelope = item if isinstance(item, NewEvent) else NewEvent(item)
            if not isinstance(envelope.event_id, str) or not envelope.event_id:
                raise InvalidStreamError(f"event_id must be a non-empty string, not {envelope.event_id!r}")
            if metadata is not None:
                envelope = attrs.evolve(envelope, metadata=envelope.metadata.merged_with(metadata))
            version = expected_version + offset
            record = serializer.encode(
                envelope, aggregate_type=aggregate_type, aggregate_id=aggregate_id, version=version
            )
            size = size_of(record)
            if size > max_bytes:
                raise EventTooLargeError(record.stream_id, record.version, record.event_type, size, max_bytes)
            encoded.append(record)
    return stream_id, encoded


def encoded_size(record: EncodedEvent) -> int:
    """The UTF-8 bytes of ``record``'s values: a store-neutral measure of an event's size."""
    return sum(len(text) if text.isascii() else len(text.encode()) for text in record.texts()) + len(
        str(record.version)
    )
