"""Changes to the event log as a subscriber sees them, and the position a reader has reached."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime

import attrs

from ..domain.events import StoredEvent
from ..exceptions import DynamoESError

__all__ = ["SHARD_END", "Change", "ChangeKind", "StreamPosition"]

SHARD_END = "END"
"""A position's mark for a shard read to its end: it is never read again, and its expiry loses nothing."""


class ChangeKind(enum.Enum):
    """What happened to the event item."""

    INSERT = "INSERT"
    """An event was appended."""
    MODIFY = "MODIFY"
    """A stored event item changed (for instance ``isDispatched`` became true)."""
    REMOVE = "REMOVE"
    """An event item was deleted."""


@attrs.frozen(kw_only=True)
class Change:
    """One change to the event log (a DynamoDB stream record, say), decoded.

    Attributes:
        kind: insert, modify or remove.
        event: the stored event from the item's new image (the old image for a removal).
        previous: for a modification, the event as it was before.
        shard_id: the shard the record came from (None when Lambda delivered it, or when the
            change was read from the event store rather than a stream).
        sequence_number: the record's sequence number within its shard ("" when read from the store).
        approximate_creation_time: when the record was written (UTC).
        expired: a removal made by DynamoDB's TTL, not by a writer.
        unread: the record is outside what the reader reads (its
            [`Selection`][dynamo_es.Selection]): its event data was not decoded, and
            ``event.event`` is None. Projections skip it.
        error: the record is read but cannot be decoded (an unregistered event type, a corrupt
            item, a failing upcaster); ``event`` holds what could be read of its envelope, with
            ``event.event`` None. A projection counts it as a failure of its aggregate.
    """

    kind: ChangeKind
    event: StoredEvent
    shard_id: str | None
    sequence_number: str
    approximate_creation_time: datetime
    previous: StoredEvent | None = None
    expired: bool = False
    unread: bool = False
    error: DynamoESError | None = None

    @property
    def decoded(self) -> bool:
        """Whether ``event.event`` holds the decoded event (neither unread nor failed)."""
        return not self.unread and self.error is None

    @classmethod
    def stored(cls, event: StoredEvent) -> Change:
        """An insert read from the event store itself (a gap filled, a table rebuilt)."""
        return cls(
            kind=ChangeKind.INSERT,
            event=event,
            shard_id=None,
            sequence_number="",
            approximate_creation_time=event.timestamp,
        )


@attrs.frozen
class StreamPosition:
    """How far a reader got: the last sequence number delivered, per shard.

    Pass it to ``subscribe_to_changes(position)`` to resume after those records. Shards it
    does not name are read from their beginning; shards marked `SHARD_END` were read to
    their end.
    """

    shards: Mapping[str, str] = attrs.field(factory=dict)

    def after(self, change: Change) -> StreamPosition:
        """This position moved past ``change``."""
        return self.after_all((change,))

    def after_all(self, changes: Iterable[Change]) -> StreamPosition:
        """This position moved past every change in ``changes``."""
        shards = dict(self.shards)
        for change in changes:
            if change.shard_id is not None and shards.get(change.shard_id) != SHARD_END:
                shards[change.shard_id] = change.sequence_number
        return StreamPosition(shards)

    def finished(self, shard_id: str) -> StreamPosition:
        """This position with ``shard_id`` read to its end."""
        return StreamPosition({**self.shards, shard_id: SHARD_END})
