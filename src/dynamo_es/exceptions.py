"""The errors dynamo-es raises. Every one derives from `DynamoESError`.

```
DynamoESError
├── ConfigurationError             bad settings (names the key)
├── InvalidStreamError             empty or malformed aggregate id/type, bad expected version
├── EventTooLargeError             an event item over DynamoDB's 400 KB item limit
├── EventTypeError
│   ├── DuplicateEventTypeError    two classes registered under one event type name
│   └── MissingHandlerError        an aggregate has no handler for an event class
├── SerializationError             an event that cannot be encoded or decoded
│   ├── CorruptItemError           a stored event item with a missing or mistyped attribute
│   └── UnknownEventTypeError      a stored event type that no class is registered for
├── ConcurrencyError               another writer appended first (to one or several streams)
├── TransactionTooLargeError       a commit over DynamoDB's 100 items or 4 MB per transaction
├── AggregateNotFoundError         the aggregate's stream holds no event
│   ├── StreamDeletedError         the stream was deleted (its marks are left)
│   ├── StreamArchivedError        the stream is in the archive table (load_archived, restore_stream)
│   └── StreamExpiredError         a temporary stream's time ran out (DynamoDB's TTL removes it)
├── StreamTruncatedError           a load reached before a truncated stream's first kept version
├── AggregateClassError            an aggregate class used wrongly (another repository's, no super().__init__())
├── ProjectionError                a projection's handler raised (the handler's error is the cause)
├── SnapshotError                  an aggregate's state cannot be captured or restored
├── SubjectForgottenError          personal data for a data subject that was forgotten
├── KeyManagementError             a subject's data key cannot be made, wrapped or unwrapped
├── EventStoreError                the store failed (cause kept in ``__cause__``)
│   ├── TransientStoreError        throttling / TransactionConflict that outlived its retries
│   │   └── OutcomeUnknownError    an append that may or may not be written (retrying it is safe)
│   ├── WriteConditionError        a read-model write's own condition failed (nothing written)
│   ├── TableNotFoundError         the table is missing and may not be created
│   ├── EndpointUnreachableError   DynamoDB cannot be reached at all
│   ├── TableSchemaError           an existing table with an incompatible key schema
│   └── SubscriptionError          a DynamoDB Streams subscription cannot go on
│       ├── StreamTrimmedError     records were trimmed (older than 24 h) before they were read
│       └── LambdaPayloadError     a Lambda payload is not from a stream of the events table
└── DynamoDBLocalError             DynamoDB Local could not be found or started
```

Errors carry their data as attributes and survive pickling. No PynamoDB or botocore
exception reaches users: the store translates them at its boundary and keeps the original
as ``__cause__``. Bad values raise these errors; an argument of the wrong Python type (a
list where a string belongs, say) may raise ``TypeError`` as usual in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

__all__ = [
    "AggregateClassError",
    "AggregateNotFoundError",
    "ConcurrencyError",
    "ConfigurationError",
    "Conflict",
    "CorruptItemError",
    "DuplicateEventTypeError",
    "DynamoDBLocalError",
    "DynamoESError",
    "EndpointUnreachableError",
    "EventStoreError",
    "EventTooLargeError",
    "EventTypeError",
    "InvalidStreamError",
    "KeyManagementError",
    "LambdaPayloadError",
    "MissingHandlerError",
    "OutcomeUnknownError",
    "ProjectionError",
    "SerializationError",
    "SnapshotError",
    "StreamArchivedError",
    "StreamDeletedError",
    "StreamExpiredError",
    "StreamTrimmedError",
    "StreamTruncatedError",
    "SubjectForgottenError",
    "SubscriptionError",
    "TableNotFoundError",
    "TableSchemaError",
    "TransactionTooLargeError",
    "TransientStoreError",
    "UnknownEventTypeError",
    "WriteConditionError",
]


def _restore(cls: type[DynamoESError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class DynamoESError(Exception):
    """Base of every error raised by dynamo-es."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _restore, (type(self), self.args, self.__dict__)


class ConfigurationError(DynamoESError):
    """A setting is unknown or has a bad value; ``key`` names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"setting {key!r}: {reason}")
        self.key = key
        self.reason = reason


class InvalidStreamError(DynamoESError, ValueError):
    """An aggregate id/type or expected version that cannot address a stream."""


class EventTooLargeError(DynamoESError):
    """An event item exceeds DynamoDB's 400 KB item limit; nothing was written."""

    def __init__(self, stream_id: str, version: int, event_type: str, size: int, limit: int) -> None:
        super().__init__(
            f"event {event_type!r} at {stream_id} version {version} is {size:,} bytes as a "
            f"DynamoDB item; the limit is {limit:,} bytes. Nothing was written."
        )
        self.stream_id = stream_id
        self.version = version
        self.event_type = event_type
        self.size = size
        self.limit = limit


class EventTypeError(DynamoESError, TypeError):
    """An event class or handler is declared wrongly."""


class DuplicateEventTypeError(EventTypeError):
    """Two different classes were registered under one event type name."""

    def __init__(self, name: str, existing: str, new: str) -> None:
        super().__init__(f"event type {name!r} is already registered to {existing}; cannot register {new}")
        self.name = name
        self.existing = existing
        self.new = new


class MissingHandlerError(EventTypeError):
    """An aggregate was given an event class it has no handler for."""

    def __init__(self, aggregate_type: str, event_type: str) -> None:
        super().__init__(
            f"aggregate {aggregate_type!r} has no handler for event {event_type!r}; "
            f"add a method decorated with @applies({event_type})"
        )
        self.aggregate_type = aggregate_type
        self.event_type = event_type


class SerializationError(DynamoESError):
    """An event could not be encoded, or a stored event could not be decoded."""

    def __init__(self, message: str, *, stream_id: str, version: int, event_type: str) -> None:
        super().__init__(f"{stream_id} version {version} ({event_type}): {message}")
        self.stream_id = stream_id
        self.version = version
        self.event_type = event_type


class SubjectForgottenError(DynamoESError):
    """Personal data of a forgotten data subject was to be written; ``subject`` names it.

    From an append, ``stream_id`` and ``version`` name the event that held it (else None).
    """

    def __init__(self, subject: str, *, stream_id: str | None = None, version: int | None = None) -> None:
        where = f" ({stream_id} version {version})" if stream_id is not None else ""
        super().__init__(f"data subject {subject!r} was forgotten: no new personal data can be stored for it{where}")
        self.subject = subject
        self.stream_id = stream_id
        self.version = version


class KeyManagementError(DynamoESError):
    """A data key could not be made, stored, wrapped or unwrapped; the cause is kept.

    ``subject`` names whose key (if one), and ``code`` the service's error code (such as KMS's
    ``ThrottlingException`` or ``DisabledException``) when a service refused.
    """

    def __init__(self, reason: str, *, subject: str | None = None, code: str | None = None) -> None:
        super().__init__(f"data key of subject {subject!r}: {reason}" if subject is not None else reason)
        self.subject = subject
        self.code = code


class CorruptItemError(SerializationError):
    """A stored item that should be an event is malformed; ``attribute`` names what is wrong.

    ``version`` is the item's sort key (-1 when it cannot be read).
    """

    def __init__(self, message: str, *, stream_id: str, version: int, event_type: str, attribute: str) -> None:
        super().__init__(message, stream_id=stream_id, version=version, event_type=event_type)
        self.attribute = attribute


class UnknownEventTypeError(SerializationError):
    """A stored event's type has no registered class."""


class Conflict(NamedTuple):
    """One stream's optimistic concurrency conflict: the version expected, and the one found."""

    stream_id: str
    expected_version: int
    actual_version: int | None
    """None when it could not be read."""

    def __str__(self) -> str:
        actual = "unknown" if self.actual_version is None else str(self.actual_version)
        return f"{self.stream_id}: expected version {self.expected_version}, actual version {actual}"


class ConcurrencyError(DynamoESError):
    """Another writer appended to the stream first (optimistic concurrency).

    Attributes:
        stream_id, expected_version, actual_version: the (first) conflicting stream.
        written_version: how far this append got before the conflict (multi-transaction appends).
        conflicts: every conflicting stream of the save, one `Conflict` each (several
            for a multi-aggregate save; nothing of such a save is written).
    """

    def __init__(
        self,
        stream_id: str,
        expected_version: int,
        actual_version: int | None,
        *,
        written_version: int | None = None,
        conflicts: tuple[Conflict, ...] = (),
    ) -> None:
        conflicts = conflicts or (Conflict(stream_id, expected_version, actual_version),)
        message = "concurrency conflict on " + "; ".join(map(str, conflicts))
        if written_version is not None and written_version > expected_version:
            message += f"; this append wrote versions {expected_version + 1}-{written_version} before the conflict"
        super().__init__(message)
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        self.written_version = expected_version if written_version is None else written_version
        self.conflicts = conflicts


class TransactionTooLargeError(DynamoESError, ValueError):
    """A commit that cannot go in one DynamoDB transaction; refused before anything is written.

    Attributes:
        items: the transaction's items (events, checks, tracking and read-model writes).
        size: its estimated request size in bytes.
        max_items: DynamoDB's limit of items per transaction (100).
        max_bytes: the byte budget (below DynamoDB's 4 MB).
        streams: the streams the commit would write.
    """

    def __init__(self, items: int, size: int, *, max_items: int, max_bytes: int, streams: tuple[str, ...]) -> None:
        named = ", ".join(streams[:5]) + (f" and {len(streams) - 5} more" if len(streams) > 5 else "")
        super().__init__(
            f"one transaction cannot hold this commit: {items:,} items (limit {max_items}) "
            f"and {size:,} bytes (limit {max_bytes:,}) for {named or 'no stream'}; nothing was written. "
            "Save fewer aggregates or events together."
        )
        self.items = items
        self.size = size
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.streams = streams


class AggregateNotFoundError(DynamoESError, LookupError):
    """The aggregate's stream holds no event."""

    def __init__(self, aggregate_type: str, aggregate_id: str) -> None:
        super().__init__(f"no {aggregate_type} with id {aggregate_id!r}")
        self.aggregate_type = aggregate_type
        self.aggregate_id = aggregate_id


class StreamDeletedError(AggregateNotFoundError):
    """The stream was deleted: it loads no events, and takes none unless deleted with ``reuse_id``.

    Attributes:
        stream_id: the deleted stream.
        last_version: the version of its last event before the deletion.
    """

    def __init__(self, stream_id: str, last_version: int) -> None:
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        super().__init__(aggregate_type, aggregate_id)
        self.args = (f"stream {stream_id} was deleted (after version {last_version})",)
        self.stream_id = stream_id
        self.last_version = last_version


class StreamArchivedError(AggregateNotFoundError):
    """The stream is archived: its events are in the archive table, and it takes no append.

    Load it with ``load_archived()`` (``Repository.get(..., archived=True)``), or bring it
    back with ``restore_stream()`` (``Repository.restore``, ``dynamo-es stream restore``).

    Attributes:
        stream_id: the archived stream.
        last_version: the version of its last event.
    """

    def __init__(self, stream_id: str, last_version: int) -> None:
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        super().__init__(aggregate_type, aggregate_id)
        self.args = (
            f"stream {stream_id} is archived (versions 1 to {last_version}): load it with archived=True, "
            "or restore it first",
        )
        self.stream_id = stream_id
        self.last_version = last_version


class StreamExpiredError(AggregateNotFoundError):
    """A temporary stream expired (``expire_after``): it loads as gone and takes no append.

    DynamoDB's TTL removes its items within days, in any order; until then, and while only
    some are gone, the stream reads as expired.

    Attributes:
        stream_id: the expired stream.
        expired_at: when it expired (epoch seconds).
    """

    def __init__(self, stream_id: str, expired_at: int) -> None:
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        super().__init__(aggregate_type, aggregate_id)
        when = datetime.fromtimestamp(expired_at, tz=UTC).isoformat()
        self.args = (f"stream {stream_id} expired at {when}",)
        self.stream_id = stream_id
        self.expired_at = expired_at


class StreamTruncatedError(DynamoESError, LookupError):
    """A load reached before a truncated stream's first version: those events are gone.

    Attributes:
        stream_id: the stream.
        first_version: its first stored version; start from a snapshot at ``first_version - 1``
            or later (`Repository` does when it has one).
    """

    def __init__(self, stream_id: str, first_version: int) -> None:
        super().__init__(
            f"stream {stream_id} was truncated: its events before version {first_version} are gone; "
            f"load it from a snapshot at version {first_version - 1} or later"
        )
        self.stream_id = stream_id
        self.first_version = first_version


class AggregateClassError(DynamoESError, TypeError):
    """An aggregate class used wrongly; ``aggregate_class`` names it, ``reason`` says what and the fix.

    For example an aggregate of one class given to a repository of another, or an aggregate
    whose ``__init__`` did not call ``super().__init__(aggregate_id)``.
    """

    def __init__(self, aggregate_class: str, reason: str) -> None:
        super().__init__(f"{aggregate_class}: {reason}")
        self.aggregate_class = aggregate_class
        self.reason = reason


class ProjectionError(DynamoESError):
    """A projection's handler raised; progress up to the change before was checkpointed."""

    def __init__(self, projection: str, stream_id: str, version: int, handled: int) -> None:
        super().__init__(f"projection {projection!r} failed on {stream_id} version {version}")
        self.projection = projection
        self.stream_id = stream_id
        self.version = version
        self.handled = handled


class SnapshotError(DynamoESError):
    """An aggregate's state cannot be captured into, or restored from, a snapshot."""


class EventStoreError(DynamoESError):
    """The event store could not complete an operation."""


class TransientStoreError(EventStoreError):
    """DynamoDB kept refusing for a transient reason (throttling, TransactionConflict)."""

    def __init__(self, stream_id: str, reason: str, attempts: int, *, action: str = "append") -> None:
        if action == "append":
            message = f"{stream_id}: gave up after {attempts} attempts ({reason}); nothing more was written"
        else:
            message = f"{stream_id}: gave up on {action} after {attempts} attempts ({reason})"
        super().__init__(message)
        self.stream_id = stream_id
        self.reason = reason
        self.attempts = attempts
        self.action = action


class OutcomeUnknownError(TransientStoreError):
    """An append failed in a way that may or may not have written it, and reading back could not tell.

    Retrying the same append (the same events, so the same event ids) is safe: DynamoDB's
    idempotency token and the store's read-back make a second write of it a no-op.
    """

    def __init__(self, stream_id: str, reason: str, attempts: int, versions: tuple[int, int]) -> None:
        EventStoreError.__init__(
            self,
            f"{stream_id}: versions {versions[0]}-{versions[1]} may or may not be written (gave up after "
            f"{attempts} attempts: {reason}; reading them back could not tell: unreadable, or empty while the "
            "request may still land); retrying this same append is safe",
        )
        self.stream_id = stream_id
        self.reason = reason
        self.attempts = attempts
        self.action = "append"
        self.versions = versions


class WriteConditionError(EventStoreError):
    """A projection's read-model write carried a condition that did not hold; nothing was written.

    Attributes:
        projection: the projection's name.
        stream_id, version: the event being applied.
        write_index: which of the handler's writes failed (0 is the first).
    """

    def __init__(self, projection: str, stream_id: str, version: int, write_index: int) -> None:
        super().__init__(
            f"{projection}: the condition of write {write_index} for {stream_id} v{version} failed; "
            "none of its writes and no checkpoint were saved"
        )
        self.projection = projection
        self.stream_id = stream_id
        self.version = version
        self.write_index = write_index


class TableNotFoundError(EventStoreError):
    """The table does not exist and ``create_table_if_not_exists`` is off."""

    def __init__(self, table_name: str) -> None:
        super().__init__(f"table {table_name!r} does not exist and create_table_if_not_exists is off")
        self.table_name = table_name


class EndpointUnreachableError(EventStoreError):
    """No connection to DynamoDB could be made (wrong endpoint, DynamoDB Local not running)."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"cannot connect to DynamoDB at {endpoint}")
        self.endpoint = endpoint


class TableSchemaError(EventStoreError):
    """An existing table's key schema does not match the settings."""

    def __init__(self, table_name: str, expected: str, actual: str) -> None:
        super().__init__(f"table {table_name!r} has key schema {actual}; dynamo-es needs {expected}")
        self.table_name = table_name
        self.expected = expected
        self.actual = actual


class SubscriptionError(EventStoreError):
    """A DynamoDB Streams subscription cannot go on (stream off, stream gone, bad images)."""


class LambdaPayloadError(SubscriptionError):
    """A Lambda payload (or one of its records) is not a shape that carries the events table's changes.

    ``found`` says what arrived (an SQS message, an EventBridge event, Kinesis data that is not
    a DynamoDB change record, ...), ``index`` which record it was (None: the payload itself).
    """

    def __init__(self, found: str, *, index: int | None = None) -> None:
        where = "the payload" if index is None else f"record {index} of the payload"
        super().__init__(
            f"{where} is {found}; expected DynamoDB Streams records ({{'Records': [...]}} with eventSource "
            "'aws:dynamodb'), the same records as a bare JSON array (EventBridge Pipes), or Kinesis Data Streams "
            "for DynamoDB records (base64 'kinesis.data', or already unwrapped)"
        )
        self.found = found
        self.index = index


class StreamTrimmedError(SubscriptionError):
    """The records after a saved position were trimmed (DynamoDB keeps them 24 hours)."""

    def __init__(self, shard_id: str, sequence_number: str | None) -> None:
        super().__init__(
            f"shard {shard_id}: records after sequence number {sequence_number} were trimmed from the "
            "stream before they were read; rebuild the projection by replaying the table"
        )
        self.shard_id = shard_id
        self.sequence_number = sequence_number


class DynamoDBLocalError(DynamoESError):
    """DynamoDB Local could not be found or started."""
