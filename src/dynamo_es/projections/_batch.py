"""What one batch of a projection came to: counts, failures, parked streams; and how changes are grouped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs

from ..core.changes import Change, ChangeKind
from ..domain.lifecycle import EXPIRED, STREAM_ARCHIVED, STREAM_DELETED, StreamDeleted
from ..exceptions import ProjectionError

__all__ = ["BatchOutcome", "RebuildProgress", "Tally", "group_changes"]


@attrs.frozen
class BatchOutcome:
    """What `handle()` did with one batch.

    Attributes:
        applied: changes that reached the handler, backfilled ones included.
        backfilled: of those, events loaded from the event store to fill a gap.
        skipped: changes not applied: already applied, duplicates, unwanted kinds, parked streams.
        failed: for each aggregate whose handler raised (and is not parked), the delivered change
            that must be delivered again; later changes of that aggregate were not applied.
        errors: the errors of ``failed``, in the same order (each with the handler's error as cause).
        parked: streams parked by this batch (their failures reached ``max_attempts``).
        unread: of ``skipped``, the changes outside what the projection reads (never decoded,
            never failed).
        newest_applied: when the newest event that reached the handler was written (None
            when none did): the projection's lag is the time since.
    """

    applied: int = 0
    backfilled: int = 0
    skipped: int = 0
    failed: tuple[Change, ...] = ()
    errors: tuple[ProjectionError, ...] = ()
    parked: tuple[str, ...] = ()
    unread: int = 0
    newest_applied: datetime | None = None


@attrs.frozen
class RebuildProgress:
    """How far a rebuild got: events read from the table, applied, and the rate.

    Attributes:
        read: events read from the table so far.
        applied: changes that reached the handler (table and live stream together).
        seconds: time since the rebuild began.
        done: the table read is finished (the live stream follows, if asked).
        unread: of the events read from the table, those outside what the projection reads
            (skipped without being decoded).
    """

    read: int
    applied: int
    seconds: float
    done: bool = False
    unread: int = 0

    @property
    def events_per_second(self) -> float:
        """Events read from the table per second."""
        return self.read / self.seconds if self.seconds > 0 else 0.0


@attrs.define
class Tally:
    applied: int = 0
    backfilled: int = 0
    skipped: int = 0
    failed: list[Change] = attrs.field(factory=list)
    errors: list[ProjectionError] = attrs.field(factory=list)
    parked: list[str] = attrs.field(factory=list)
    versions: dict[str, int] = attrs.field(factory=dict)
    unread: int = 0
    newest_applied: datetime | None = None

    def applied_one(self, written: datetime) -> None:
        """Count one change that reached the handler, written at ``written``."""
        self.applied += 1
        if self.newest_applied is None or written > self.newest_applied:
            self.newest_applied = written

    def outcome(self) -> BatchOutcome:
        return BatchOutcome(
            self.applied,
            self.backfilled,
            self.skipped,
            tuple(self.failed),
            tuple(self.errors),
            tuple(self.parked),
            self.unread,
            self.newest_applied,
        )


def as_expiry(change: Change) -> Change:
    """A removal by DynamoDB's TTL as the deletion of its stream: a `StreamDeleted` with reason `EXPIRED`."""
    deleted = StreamDeleted(change.event.version, EXPIRED)
    event = attrs.evolve(change.event, event=deleted, event_type=STREAM_DELETED)
    return attrs.evolve(change, event=event, unread=False, error=None)


def _expire(expired: dict[str, Change], others: list[Change], removal: Change) -> bool:
    """Count a TTL removal into its stream's one expiry (kept at the highest version); True when one was there."""
    stream_id = removal.event.stream_id
    known = expired.get(stream_id)
    if known is not None and known.event.version >= removal.event.version:
        return True
    expired[stream_id] = expiry = as_expiry(removal)
    if known is None:
        others.append(expiry)
        return False
    others[others.index(known)] = expiry
    return True


def group_changes(changes: Iterable[Change], kinds: frozenset[ChangeKind]) -> tuple[dict[str, list[Change]], int]:
    """Wanted changes per stream (inserts by version, duplicates dropped; then the others), and the unwanted count.

    An archived stream's marks (`StreamArchived`) are never wanted: they are no events of the
    aggregate, and the slot after the last event is the next event's once the stream is restored.
    A removal by DynamoDB's TTL is always wanted, as a `StreamDeleted` (reason `EXPIRED`), once
    per stream in a batch, at the highest version removed: TTL removes a temporary stream item
    by item, in any order.
    """
    inserts: dict[str, dict[int, Change]] = {}
    others: dict[str, list[Change]] = {}
    seen: set[str] = set()
    unwanted = 0
    expired: dict[str, Change] = {}
    for change in changes:
        if change.expired and change.kind is ChangeKind.REMOVE:
            unwanted += _expire(expired, others.setdefault(change.event.stream_id, []), change)
        elif change.kind not in kinds or change.event.event_type == STREAM_ARCHIVED:
            unwanted += 1
        elif change.kind is ChangeKind.INSERT:
            versions = inserts.setdefault(change.event.stream_id, {})
            unwanted += change.event.version in versions
            versions.setdefault(change.event.version, change)
        elif change.sequence_number and change.sequence_number in seen:
            unwanted += 1  # the same record twice in one batch
        else:
            seen.add(change.sequence_number)
            others.setdefault(change.event.stream_id, []).append(change)
    groups = {s: [versions[v] for v in sorted(versions)] for s, versions in inserts.items()}
    for stream_id, extra in others.items():
        groups.setdefault(stream_id, []).extend(extra)
    return groups, unwanted
