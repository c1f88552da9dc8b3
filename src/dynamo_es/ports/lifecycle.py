"""A stream's lifecycle: deleting, truncating and archiving it, the protocols stores implement (sync and async).

A deletion first writes `StreamDeleted` after the stream's last event (with the stream's own
optimistic check, so it is all or nothing), then removes the events in bounded steps. From the
first step on, the stream loads as deleted (`StreamDeletedError`) and takes no append, not at
version 1 either; a deletion cut short is finished by calling ``delete_stream()`` again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

import attrs

from ..core.serialization import EncodedEvent, EventSerializer
from ..domain.events import StoredEvent
from ..domain.lifecycle import (
    STREAM_ARCHIVED,
    STREAM_DELETED,
    STREAM_TRUNCATED,
    StreamArchived,
    StreamDeleted,
    StreamTruncated,
)
from ..exceptions import (
    ConfigurationError,
    StreamArchivedError,
    StreamDeletedError,
    StreamExpiredError,
    StreamTruncatedError,
)

__all__ = [
    "ArchivableStore",
    "AsyncArchivableStore",
    "AsyncDeletableStore",
    "DeletableStore",
    "StreamArchival",
    "StreamDeletion",
    "StreamTruncation",
    "check_lifetimes",
    "check_loadable",
    "check_unexpired",
    "expiry_for",
    "first_kept_version",
    "last_version_of",
    "with_expiry",
]


@attrs.frozen(kw_only=True)
class StreamDeletion:
    """What ``delete_stream()`` did.

    Attributes:
        stream_id: the stream.
        last_version: the version of its last event before the deletion (0: it had none, and
            nothing was written).
        removed: how many items this call removed (events, and with ``reuse_id`` the marks).
        already_deleted: an earlier call began the deletion; this one finished it.
        reusable: the id holds nothing any more: the next append starts again at version 1.
    """

    stream_id: str
    last_version: int
    removed: int
    already_deleted: bool = False
    reusable: bool = False


@attrs.frozen(kw_only=True)
class StreamTruncation:
    """What ``truncate_stream()`` did.

    Attributes:
        stream_id: the stream.
        first_version: its first stored version now (loads must start there or later).
        removed: how many events this call removed (version 1 replaced by the mark included).
    """

    stream_id: str
    first_version: int
    removed: int


@attrs.frozen(kw_only=True)
class StreamArchival:
    """What ``archive_stream()`` or ``restore_stream()`` did.

    Attributes:
        stream_id: the stream.
        last_version: the version of its last event.
        moved: how many events this call moved (to the archive table, or back).
        archived: where the stream is now: True in the archive, False back in the events table.
        already: an earlier call had done it (or begun it: this one finished it).
    """

    stream_id: str
    last_version: int
    moved: int
    archived: bool
    already: bool = False


@runtime_checkable
class DeletableStore(Protocol):
    """A store whose streams can be deleted: the memory and DynamoDB stores."""

    def delete_stream(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        expected_version: int | None = None,
        reason: str = "",
        reuse_id: bool = False,
    ) -> StreamDeletion:
        """Delete the stream's events; see the module's description.

        ``expected_version``: refuse (`ConcurrencyError`) unless the stream is at that version.
        ``reuse_id``: remove the deletion's marks too, so the id may start again at version 1.
        Idempotent: a deleted stream is deleted again as a no-op (or the rest of a cut-short one).
        """
        ...

    def truncate_stream(self, aggregate_id: str, aggregate_type: str, before_version: int) -> StreamTruncation:
        """Remove the events before ``before_version``; version 1 becomes a `StreamTruncated` mark.

        Loads must then start at ``before_version`` or later (from a snapshot: see
        `Repository.truncate`, which checks that one exists); earlier ones raise
        `StreamTruncatedError`. Appends are unaffected. Raises `InvalidStreamError` when
        ``before_version`` is below 2 or past the stream's last version, `StreamDeletedError`
        for a deleted stream. Idempotent, and finishes a truncation that was cut short.
        """
        ...


@runtime_checkable
class AsyncDeletableStore(Protocol):
    """The async `DeletableStore`."""

    async def delete_stream(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        expected_version: int | None = None,
        reason: str = "",
        reuse_id: bool = False,
    ) -> StreamDeletion:
        """Delete the stream's events; see `DeletableStore`."""
        ...

    async def truncate_stream(self, aggregate_id: str, aggregate_type: str, before_version: int) -> StreamTruncation:
        """Remove the events before ``before_version``; see `DeletableStore`."""
        ...


@runtime_checkable
class ArchivableStore(Protocol):
    """A store that can move a stream to its archive and back: the memory and DynamoDB stores.

    An archived stream keeps two `StreamArchived` marks in the events table (over version 1 and
    after its last event), so it takes no append and loads as `StreamArchivedError`, while its
    events wait, unchanged, in the archive table (the same schema).
    """

    def archive_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move the stream's events to the archive; idempotent, and finishes an archiving cut short.

        Raises `AggregateNotFoundError` for a stream without events, `StreamDeletedError` for a deleted one.
        """
        ...

    def restore_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move an archived stream's events back: it loads and takes appends again. Idempotent."""
        ...

    def load_archived(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """An archived stream's events, from the archive table (`AggregateNotFoundError` if it is not archived)."""
        ...


@runtime_checkable
class AsyncArchivableStore(Protocol):
    """The async `ArchivableStore`."""

    async def archive_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move the stream's events to the archive; see `ArchivableStore`."""
        ...

    async def restore_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move an archived stream's events back; see `ArchivableStore`."""
        ...

    async def load_archived(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """An archived stream's events; see `ArchivableStore`."""
        ...


def check_loadable(serializer: EventSerializer, records: Sequence[EncodedEvent]) -> None:
    """Raise when a load's first or last record is a store's mark: the stream is deleted or truncated.

    A deletion replaces version 1 with a mark and writes one after the last event, so every
    load of a deleted stream that reaches either end holds one (`StreamDeletedError`). A
    truncation replaces version 1, so a load from version 1 holds it (`StreamTruncatedError`).
    An archived stream's marks are where a deleted one's are (`StreamArchivedError`).
    """
    for record in (records[0], records[-1]) if records else ():
        if record.event_type == STREAM_DELETED:
            raise StreamDeletedError(record.stream_id, last_version_of(serializer, record))
        if record.event_type == STREAM_ARCHIVED:
            raise StreamArchivedError(record.stream_id, last_version_of(serializer, record))
        if record.event_type == STREAM_TRUNCATED:
            raise StreamTruncatedError(record.stream_id, first_kept_version(serializer, record))


def check_unexpired(records: Sequence[EncodedEvent], first_version: int, *, now: float | None = None) -> None:
    """Raise `StreamExpiredError` when a load's records belong to a temporary stream that expired.

    Every item of a temporary stream carries the stream's one expiry, so the first record tells
    it. DynamoDB's TTL deletes expired items in any order, and only within days: a stream is
    expired from its expiry on, and also when a load from version 1 finds version 1 gone.
    """
    expires_at = records[0].expires_at if records else None
    if expires_at is None:
        return
    if expires_at <= (time.time() if now is None else now) or (first_version == 1 and records[0].version > 1):
        raise StreamExpiredError(records[0].stream_id, expires_at)


def check_lifetimes(_: object, attribute: attrs.Attribute[Any], lifetimes: Mapping[str, timedelta]) -> None:
    """An attrs validator of ``expire_after``: aggregate type names to positive lifetimes."""
    for aggregate_type, lifetime in lifetimes.items():
        if not isinstance(lifetime, timedelta) or lifetime <= timedelta(0):
            raise ConfigurationError(attribute.name, f"{aggregate_type}: {lifetime!r} is not a positive timedelta")


def expiry_for(lifetime: float, *, now: float | None = None) -> int:
    """The expiry (epoch seconds) of a temporary stream begun now that lives ``lifetime`` seconds."""
    return int((time.time() if now is None else now) + lifetime)


def with_expiry(records: list[EncodedEvent], expires_at: int | None) -> list[EncodedEvent]:
    """``records`` carrying their stream's expiry (unchanged for a stream without one)."""
    if expires_at is None:
        return records
    if expires_at <= time.time():
        raise StreamExpiredError(records[0].stream_id, expires_at)
    return [attrs.evolve(record, expires_at=expires_at) for record in records]


def first_kept_version(serializer: EventSerializer, record: EncodedEvent) -> int:
    """A `StreamTruncated` record's first kept version (from the class, or a raw serializer's document)."""
    mark = serializer.decode(record).event
    if isinstance(mark, StreamTruncated):
        return mark.first_version
    if isinstance(mark, dict) and isinstance(mark.get("first_version"), int):
        return int(mark["first_version"])
    raise StreamTruncatedError(record.stream_id, 0)  # unreadable: refuse rather than guess


def last_version_of(serializer: EventSerializer, record: EncodedEvent) -> int:
    """A `StreamDeleted` or `StreamArchived` record's last version (from the class, or a raw document)."""
    mark = serializer.decode(record).event
    if isinstance(mark, (StreamDeleted, StreamArchived)):
        return mark.last_version
    if isinstance(mark, dict) and isinstance(mark.get("last_version"), int):
        return int(mark["last_version"])
    return record.version - 1
