"""InMemoryEventStore: the reference behaviour of a store, for fast unit tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import attrs

from ..core.changes import Change, ChangeKind, StreamPosition
from ..core.reading import ChangeDecoder, Selection
from ..core.serialization import EncodedEvent, EventSerializer
from ..domain.events import EventHistory, EventMetadata, StoredEvent
from ..domain.lifecycle import STREAM_ARCHIVED, STREAM_TRUNCATED, StreamArchived, StreamDeleted, StreamTruncated
from ..exceptions import (
    AggregateNotFoundError,
    ConcurrencyError,
    Conflict,
    InvalidStreamError,
    StreamArchivedError,
    StreamDeletedError,
    StreamTruncatedError,
)
from ..ports.lifecycle import (
    StreamArchival,
    StreamDeletion,
    StreamTruncation,
    check_lifetimes,
    check_loadable,
    check_unexpired,
    expiry_for,
    with_expiry,
)
from ..ports.source import StartAt
from ..ports.store import (
    AppendResult,
    CommitResult,
    EncodedAppend,
    StreamAppend,
    Tracking,
    check_tracking,
    check_transaction_size,
    check_version,
    committed,
    encode_append,
    encode_appends,
    encoded_size,
    make_stream_id,
)
from ._checkpoints import InMemoryCheckpointStore
from ._log import ChangeLog
from ._sync.subscription import MemorySubscription

__all__ = ["InMemoryEventStore"]


@attrs.define
class InMemoryEventStore:
    """An [`EventStore`][dynamo_es.EventStore] held in a dict, with the same semantics as the DynamoDB store.

    Events go through the same serialization round trip (every load decodes afresh, as from
    DynamoDB) and the same input checks; an event
    larger than ``max_event_bytes`` (by `encoded_size()`; DynamoDB's item limit by default)
    is refused, and each batch of ``max_batch_size`` events is atomic. Thread-safe.

    Attributes:
        expire_after: temporary streams by aggregate type, as on the DynamoDB store: each
            expires this long after its first event (and then reads as expired).
        tracking: where `append_many()` records [`Tracking`][dynamo_es.Tracking] (a process manager's
            checkpoints: pass it as the process manager's checkpoint store).
    """

    serializer: EventSerializer = attrs.field(factory=EventSerializer)
    max_batch_size: int = attrs.field(default=100, kw_only=True)
    max_event_bytes: int = attrs.field(default=400 * 1024, kw_only=True)
    expire_after: Mapping[str, timedelta] = attrs.field(factory=dict, kw_only=True, validator=check_lifetimes)
    tracking: InMemoryCheckpointStore = attrs.field(factory=InMemoryCheckpointStore, kw_only=True)
    _streams: dict[str, list[EncodedEvent]] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.RLock = attrs.field(factory=threading.RLock, init=False, repr=False)
    _log: ChangeLog = attrs.field(init=False, repr=False)
    _claims: dict[tuple[str, int], tuple[str, float]] = attrs.field(factory=dict, init=False, repr=False)
    _deleted: dict[str, EncodedEvent] = attrs.field(factory=dict, init=False, repr=False)
    """Deleted and archived streams' marks (`StreamDeleted`, `StreamArchived`), after the last event."""
    _archive: dict[str, list[EncodedEvent]] = attrs.field(factory=dict, init=False, repr=False)
    """Archived streams' records, as they were in ``_streams``."""

    def __attrs_post_init__(self) -> None:
        self._log = ChangeLog(threading.Condition(self._lock))

    def subscribe_to_changes(
        self,
        position: StreamPosition | None = None,
        *,
        start_at: StartAt = "trim_horizon",
        reads: Selection | None = None,
    ) -> MemorySubscription:
        """A subscription to this store's appends (and outbox marks), like a DynamoDB stream's.

        Records outside ``reads`` arrive undecoded (``unread``); one that cannot be decoded
        arrives with its ``error`` instead of the event.
        """
        decoder = ChangeDecoder(self.serializer, reads)
        return MemorySubscription(self._log, decoder, position or StreamPosition(), start_at=start_at)

    def read_changes(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        reads: Selection | None = None,
    ) -> list[Change]:
        """The stream's events as changes; see [`ChangeReader`][dynamo_es.projections.ChangeReader]."""
        records = self._records(aggregate_id, aggregate_type, from_version, to_version, deleted_ok=True)
        return [ChangeDecoder(self.serializer, reads).stored(record) for record in records]

    def scan_changes(
        self, *, reads: Selection | None = None, segments: int = 4, page_size: int = 1000
    ) -> Iterator[list[Change]]:
        """Every stream's events as changes, by pages; see [`ChangeReader`][dynamo_es.projections.ChangeReader]."""
        decoder = ChangeDecoder(self.serializer, reads)
        with self._lock:
            records = [record for stream in self._streams.values() for record in _kept(stream)]
        for start in range(0, len(records), page_size):
            yield [decoder.stored(record) for record in records[start : start + page_size]]

    def scan(self, *, segments: int = 4, page_size: int = 1000) -> Iterator[list[StoredEvent]]:
        """Every stream's events, a page at a time (``segments`` is accepted for the protocol)."""
        with self._lock:
            records = [record for stream in self._streams.values() for record in _kept(stream)]
        for start in range(0, len(records), page_size):
            yield self.serializer.decode_all(records[start : start + page_size])

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
            size_of=encoded_size,
            max_bytes=self.max_event_bytes,
        )
        written = expected_version
        size = max(1, self.max_batch_size)
        with self._lock:
            if stream_id in self._deleted:  # a conflict at its mark's version
                return _conflict(stream_id, expected_version, written, self._deleted[stream_id].version)
            records = with_expiry(records, self._expiry(stream_id, expected_version))
            batches = [records[start : start + size] for start in range(0, len(records), size)]
            stream = self._streams.setdefault(stream_id, [])
            for batch in batches:
                if len(stream) != written and not _holds(stream, batch):
                    return _conflict(stream_id, expected_version, written, len(stream))
                if len(stream) == written:
                    stream.extend(batch)
                    for record in batch:
                        self._log.record(ChangeKind.INSERT, record)
                written = batch[-1].version
        return AppendResult(
            success=True,
            stream_id=stream_id,
            expected_version=expected_version,
            new_version=written,
        )

    def delete_stream(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        expected_version: int | None = None,
        reason: str = "",
        reuse_id: bool = False,
    ) -> StreamDeletion:
        """Delete the stream at once; see [`DeletableStore`][dynamo_es.DeletableStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        with self._lock:
            mark = self._deleted.get(stream_id)
            if mark is not None and mark.event_type == STREAM_ARCHIVED:
                raise StreamArchivedError(stream_id, mark.version - 1)
            if mark is not None:
                return self._deleted_again(stream_id, mark, reuse_id=reuse_id)
            stream = self._streams.get(stream_id, [])
            if expected_version is not None and expected_version != len(stream):
                raise ConcurrencyError(stream_id, expected_version, len(stream))
            if not stream:
                return StreamDeletion(stream_id=stream_id, last_version=0, removed=0)
            mark = self._mark(aggregate_id, aggregate_type, StreamDeleted(len(stream), reason), len(stream))
            self._log.record(ChangeKind.INSERT, mark)
            kept = _kept(self._streams.pop(stream_id))  # a truncated stream's mark once, not per freed slot
            for record in kept:
                self._log.record(ChangeKind.REMOVE, record)
            if reuse_id:
                self._log.record(ChangeKind.REMOVE, mark)
            else:
                self._deleted[stream_id] = mark
        removed = len(kept) + 2 * reuse_id  # as on DynamoDB: the items, and both marks with reuse_id
        return StreamDeletion(stream_id=stream_id, last_version=len(stream), removed=removed, reusable=reuse_id)

    def _deleted_again(self, stream_id: str, mark: EncodedEvent, *, reuse_id: bool) -> StreamDeletion:
        if reuse_id:
            del self._deleted[stream_id]
            self._log.record(ChangeKind.REMOVE, mark)
        return StreamDeletion(
            stream_id=stream_id,
            last_version=mark.version - 1,
            removed=2 * reuse_id,
            already_deleted=True,
            reusable=reuse_id,
        )

    def _expiry(self, stream_id: str, expected_version: int) -> int | None:
        """The expiry an append stamps on its events: as on DynamoDB, version 1's (None: not temporary)."""
        lifetime = self.expire_after.get(stream_id.partition(":")[0])
        if lifetime is None:
            return None
        stream = self._streams.get(stream_id)
        if expected_version == 0 or not stream:
            return expiry_for(lifetime.total_seconds())
        return stream[0].expires_at

    def _mark(self, aggregate_id: str, aggregate_type: str, mark: Any, after: int) -> EncodedEvent:
        """A store's mark (`StreamDeleted`, `StreamTruncated`) as the record at ``after + 1``, never published."""
        _, (record,) = encode_append(
            self.serializer,
            aggregate_id,
            aggregate_type,
            [mark],
            after,
            None,
            size_of=encoded_size,
            max_bytes=self.max_event_bytes,
        )
        return attrs.evolve(record, is_dispatched=True)

    def truncate_stream(self, aggregate_id: str, aggregate_type: str, before_version: int) -> StreamTruncation:
        """Remove the events before ``before_version``; see [`DeletableStore`][dynamo_es.DeletableStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("before_version", before_version, minimum=2)
        with self._lock:
            if stream_id in self._deleted:
                check_loadable(self.serializer, [self._deleted[stream_id]])
            stream = self._streams.get(stream_id, [])
            if before_version > len(stream):
                raise InvalidStreamError(
                    f"cannot truncate {stream_id} before version {before_version}: it ends at {len(stream)}"
                )
            first = _first_version(stream)
            if first >= before_version:
                return StreamTruncation(stream_id=stream_id, first_version=first, removed=0)
            mark = self._mark(aggregate_id, aggregate_type, StreamTruncated(before_version), 0)
            self._log.record(ChangeKind.MODIFY, mark, stream[0])
            stream[0] = mark
            for version in range(max(first, 2), before_version):
                self._log.record(ChangeKind.REMOVE, stream[version - 1])
                stream[version - 1] = mark  # the data is gone; the slot stays taken
        return StreamTruncation(stream_id=stream_id, first_version=before_version, removed=before_version - first)

    def archive_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move the stream to the archive at once; see [`ArchivableStore`][dynamo_es.ArchivableStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        with self._lock:
            mark = self._deleted.get(stream_id)
            if mark is not None and mark.event_type != STREAM_ARCHIVED:
                raise StreamDeletedError(stream_id, mark.version - 1)
            if mark is not None:
                return StreamArchival(
                    stream_id=stream_id, last_version=mark.version - 1, moved=0, archived=True, already=True
                )
            stream = self._streams.pop(stream_id, [])
            if not stream:
                raise AggregateNotFoundError(aggregate_type, aggregate_id)
            archived = StreamArchived(len(stream))
            over, after = (self._mark(aggregate_id, aggregate_type, archived, slot) for slot in (0, len(stream)))
            self._log.record(ChangeKind.INSERT, after)
            self._log.record(ChangeKind.MODIFY, over, stream[0])
            kept = _kept(stream)
            for record in kept[1:]:
                self._log.record(ChangeKind.REMOVE, record)
            self._archive[stream_id] = stream
            self._deleted[stream_id] = after
        return StreamArchival(stream_id=stream_id, last_version=len(stream), moved=len(kept), archived=True)

    def restore_stream(self, aggregate_id: str, aggregate_type: str) -> StreamArchival:
        """Move an archived stream back at once; see [`ArchivableStore`][dynamo_es.ArchivableStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        with self._lock:
            mark = self._deleted.get(stream_id)
            if mark is None or mark.event_type != STREAM_ARCHIVED:
                last = len(self._records(aggregate_id, aggregate_type, 1, None, deleted_ok=False))
                if not last:
                    raise AggregateNotFoundError(aggregate_type, aggregate_id)
                return StreamArchival(stream_id=stream_id, last_version=last, moved=0, archived=False, already=True)
            stream = self._streams[stream_id] = self._archive.pop(stream_id)
            del self._deleted[stream_id]
            kept = _kept(stream)
            for record in kept[1:]:
                self._log.record(ChangeKind.INSERT, record)
            self._log.record(ChangeKind.MODIFY, stream[0])
            self._log.record(ChangeKind.REMOVE, mark)
        return StreamArchival(stream_id=stream_id, last_version=len(stream), moved=len(kept), archived=False)

    def load_archived(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> list[StoredEvent]:
        """An archived stream's events; see [`ArchivableStore`][dynamo_es.ArchivableStore]."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        with self._lock:
            records = list(self._archive.get(stream_id, ()))
        if not records:
            raise AggregateNotFoundError(aggregate_type, aggregate_id)
        return self.serializer.decode_all(_sliced(stream_id, records, from_version, to_version))

    def append_many(self, appends: Sequence[StreamAppend], *, tracking: Tracking | None = None) -> CommitResult:
        """Append to several streams at once, all or nothing; see [`EventStore`][dynamo_es.EventStore]."""
        check_tracking(tracking)
        encoded = encode_appends(self.serializer, appends, size_of=encoded_size, max_bytes=self.max_event_bytes)
        encoded = [append for append in encoded if append.records]  # an append without events checks nothing
        records = [record for append in encoded for record in append.records]
        size = sum(encoded_size(record) for record in records)
        check_transaction_size(encoded, len(records) + (tracking is not None), size)
        with self._lock:
            encoded = [
                attrs.evolve(a, records=with_expiry(a.records, self._expiry(a.stream_id, a.expected_version)))
                for a in encoded
            ]
            if tracking is None:
                return self._commit_locked(encoded)
            result = self.tracking.record_tracking(
                tracking, lambda: self._commit_locked(encoded), done=lambda outcome: outcome.success
            )
        return CommitResult(already_processed=True) if result is None else result

    def _commit_locked(self, encoded: list[EncodedAppend]) -> CommitResult:
        deleted = tuple(
            Conflict(a.stream_id, a.expected_version, self._deleted[a.stream_id].version)
            for a in encoded
            if a.stream_id in self._deleted
        )
        if deleted:
            return CommitResult(conflicts=deleted)
        streams = [self._streams.get(append.stream_id, []) for append in encoded]
        pairs = list(zip(encoded, streams, strict=True))
        if encoded and all(_holds(stream, append.records) for append, stream in pairs):
            return committed(encoded)  # this very commit, retried
        conflicts = tuple(
            Conflict(append.stream_id, append.expected_version, len(stream))
            for append, stream in pairs
            if len(stream) != append.expected_version
        )
        if conflicts:
            return CommitResult(conflicts=conflicts)
        for append in encoded:
            self._streams.setdefault(append.stream_id, []).extend(append.records)
            for record in append.records:
                self._log.record(ChangeKind.INSERT, record)
        return committed(encoded)

    def load(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
    ) -> list[StoredEvent]:
        """The stream's events from ``from_version`` to ``to_version``; see [`EventStore`][dynamo_es.EventStore]."""
        return self.serializer.decode_all(self._records(aggregate_id, aggregate_type, from_version, to_version))

    def load_history(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
    ) -> EventHistory:
        """The events `load()` would give, decoded alone, with the version of the last (for a replay)."""
        records = self._records(aggregate_id, aggregate_type, from_version, to_version)
        events = tuple(self.serializer.decode_events(records))
        return EventHistory(events, records[-1].version if records else 0)

    def _records(
        self,
        aggregate_id: str,
        aggregate_type: str,
        from_version: int,
        to_version: int | None,
        *,
        deleted_ok: bool = False,
    ) -> list[EncodedEvent]:
        """The stream's records in the range; a deleted stream raises `StreamDeletedError` unless ``deleted_ok``."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("from_version", from_version, minimum=1)
        if to_version is not None:
            check_version("to_version", to_version)
        with self._lock:
            mark = self._deleted.get(stream_id)
            if mark is not None and not deleted_ok:
                check_loadable(self.serializer, [mark])
            if mark is not None:  # all that is left of the stream
                last = mark.version if to_version is None else to_version
                return [mark] if from_version <= mark.version <= last else []
            records = list(self._streams.get(stream_id, ()))
        if not deleted_ok:
            check_unexpired(records, from_version)
        return _sliced(stream_id, records, from_version, to_version, truncated_ok=deleted_ok)

    def undispatched(self, *, page_size: int = 100) -> Iterator[StoredEvent]:
        """Events not yet marked dispatched, oldest first."""
        with self._lock:
            pending = [r for stream in self._streams.values() for r in stream if not r.is_dispatched]
        pending.sort(key=lambda record: (record.timestamp, record.stream_id, record.version))
        return (self.serializer.decode(record) for record in pending)

    def count_undispatched(self) -> int:
        """How many events are waiting in the outbox."""
        with self._lock:
            return sum(not r.is_dispatched for stream in self._streams.values() for r in stream)

    def claim(self, aggregate_id: str, aggregate_type: str, version: int, *, owner: str, lease_seconds: float) -> bool:
        """Claim an undispatched event for one dispatcher, with the DynamoDB store's rules."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("version", version, minimum=1)
        now = time.time()
        with self._lock:
            stream = self._streams.get(stream_id, [])
            if version > len(stream) or stream[version - 1].is_dispatched:
                return False
            if version > 1 and not stream[version - 2].is_dispatched:
                return False
            holder, until = self._claims.get((stream_id, version), (owner, 0.0))
            if holder != owner and until >= now:
                return False
            self._claims[(stream_id, version)] = (owner, now + lease_seconds)
            return True

    def mark_dispatched(self, aggregate_id: str, aggregate_type: str, version: int) -> bool:
        """Mark one event dispatched; False when it already was (or does not exist)."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("version", version, minimum=1)
        with self._lock:
            stream = self._streams.get(stream_id, [])
            if version > len(stream) or stream[version - 1].is_dispatched:
                return False
            old = stream[version - 1]
            stream[version - 1] = attrs.evolve(old, is_dispatched=True)
            self._log.record(ChangeKind.MODIFY, stream[version - 1], old)
            return True

    def stream_version(self, aggregate_id: str, aggregate_type: str) -> int:
        """The version of the stream's last event (of a deleted one, its mark's); 0 when it has none."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        with self._lock:
            mark = self._deleted.get(stream_id)
            return mark.version if mark is not None else len(self._streams.get(stream_id, ()))


def _conflict(stream_id: str, expected_version: int, written: int, actual: int) -> AppendResult:
    return AppendResult(
        success=False,
        stream_id=stream_id,
        expected_version=expected_version,
        new_version=written,
        conflict=True,
        actual_version=actual,
    )


def _first_version(stream: list[EncodedEvent]) -> int:
    """The first version a truncated stream still holds (1 when it is not truncated)."""
    if not stream or stream[0].event_type != STREAM_TRUNCATED:
        return 1
    return next(index + 1 for index, record in enumerate(stream) if record.event_type != STREAM_TRUNCATED)


def _sliced(
    stream_id: str, records: list[EncodedEvent], first: int, last: int | None, *, truncated_ok: bool = False
) -> list[EncodedEvent]:
    """Versions ``first`` to ``last`` of a stream's records (`StreamTruncatedError` before a truncation's first)."""
    kept = _first_version(records)
    if first < kept and not truncated_ok:
        raise StreamTruncatedError(stream_id, kept)
    end = len(records) if last is None else min(last, len(records))
    return records[max(first, kept) - 1 : end]


def _kept(records: list[EncodedEvent]) -> list[EncodedEvent]:
    """The records a table would hold: a truncated stream's mark once, at version 1 (not in each freed slot)."""
    return [record for index, record in enumerate(records) if record.version == index + 1]


def _holds(stream: list[EncodedEvent], batch: list[EncodedEvent]) -> bool:
    """Whether ``stream`` already holds exactly ``batch``'s events in its slots (a retry)."""
    first = batch[0].version - 1
    stored = stream[first : first + len(batch)]
    return [r.event_id for r in stored] == [r.event_id for r in batch]
