"""What a reader reads, and how records become changes: selected, skipped undecoded, or carrying their error.

A [`Selection`][dynamo_es.Selection] names the event types and aggregate types a
projection reads. A [`ChangeDecoder`][dynamo_es.projections.ChangeDecoder] turns stored records
into [`Change`][dynamo_es.Change] values by it: a record outside the selection becomes an
*unread* change whose event data is never decoded, and a record that cannot be decoded becomes
a change that carries its error instead of the event. So one foreign or corrupt record never
stops a reader: the projection skips the first kind and fails only its own aggregate with the second.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs

from ..domain.events import EventMetadata, StoredEvent, event_type_of
from ..exceptions import CorruptItemError, DynamoESError
from .changes import Change, ChangeKind
from .serialization import EncodedEvent, EventSerializer

__all__ = ["ChangeDecoder", "Selection", "envelope", "to_selection"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _type_names(values: Iterable[type[Any] | str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str | type):
        values = (values,)
    return frozenset(value if isinstance(value, str) else event_type_of(value)[0] for value in values)


def _strings(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset((values,) if isinstance(values, str) else values)


@attrs.frozen
class Selection:
    """What a reader reads: event types and/or aggregate types (None: any).

    A record is read when its event type and its aggregate type are both selected. Event
    types may be given as registered classes or as type names (a name need not be registered
    here: it is compared with the item's ``eventType`` attribute before anything is decoded).

    ::

        Selection([Deposited, Withdrawn])             # these event types, in any aggregate
        Selection(aggregate_types=["Account"])        # every event of Account streams
    """

    event_types: frozenset[str] | None = attrs.field(default=None, converter=_type_names)
    aggregate_types: frozenset[str] | None = attrs.field(default=None, converter=_strings, kw_only=True)

    @property
    def everything(self) -> bool:
        """Whether every record is read."""
        return self.event_types is None and self.aggregate_types is None

    def selects(self, aggregate_type: str, event_type: str) -> bool:
        """Whether a record of ``event_type`` in a stream of ``aggregate_type`` is read."""
        return (self.event_types is None or event_type in self.event_types) and (
            self.aggregate_types is None or aggregate_type in self.aggregate_types
        )

    def __str__(self) -> str:
        parts = []
        if self.event_types is not None:
            parts.append(f"event types {sorted(self.event_types)}")
        if self.aggregate_types is not None:
            parts.append(f"aggregate types {sorted(self.aggregate_types)}")
        return " and ".join(parts) or "everything"


def to_selection(value: Selection | Iterable[type[Any] | str] | None) -> Selection:
    """A `Selection` from itself, from event classes or type names, or everything for None."""
    if value is None:
        return Selection()
    if isinstance(value, Selection):
        return value
    return Selection(value)


def _or_everything(selection: Selection | None) -> Selection:
    return selection if selection is not None else Selection()


def envelope(encoded: EncodedEvent) -> StoredEvent:
    """The envelope of a record whose event is not decoded: identity and type, ``event`` None.

    The metadata is not parsed (it is left empty); a timestamp that does not parse is the epoch.
    """
    try:
        timestamp = datetime.fromisoformat(encoded.timestamp)
    except (TypeError, ValueError):
        timestamp = _EPOCH
    return StoredEvent(
        stream_id=encoded.stream_id,
        aggregate_id=encoded.aggregate_id,
        aggregate_type=encoded.aggregate_type,
        version=encoded.version,
        event_id=encoded.event_id,
        event_type=encoded.event_type,
        timestamp=timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC),
        event=None,
        metadata=EventMetadata(),
        is_dispatched=encoded.is_dispatched,
    )


def _corrupt_envelope(error: CorruptItemError) -> StoredEvent:
    aggregate_type, _, aggregate_id = error.stream_id.partition(":")
    return StoredEvent(
        stream_id=error.stream_id,
        aggregate_id=aggregate_id,
        aggregate_type=aggregate_type,
        version=error.version,
        event_id="",
        event_type=error.event_type,
        timestamp=_EPOCH,
        event=None,
        metadata=EventMetadata(),
    )


@attrs.frozen
class ChangeDecoder:
    """Decodes records for one reader: only what ``selection`` reads, and never raising for a bad record.

    Attributes:
        serializer: decodes the selected records' event data.
        selection: what is read (None: everything); records outside it become unread changes.
    """

    serializer: EventSerializer
    selection: Selection = attrs.field(factory=Selection, converter=_or_everything)

    def event(self, encoded: EncodedEvent) -> tuple[StoredEvent, bool, DynamoESError | None]:
        """``encoded`` as (stored event, unread, error): decoded if selected; its error if it does not decode."""
        if not self.selection.selects(encoded.aggregate_type, encoded.event_type):
            return envelope(encoded), True, None
        try:
            return self.serializer.decode(encoded), False, None
        except DynamoESError as error:
            return envelope(encoded), False, error

    def stored(self, encoded: EncodedEvent) -> Change:
        """An insert read from the store itself (a gap filled, a table rebuilt), decoded by the rules above."""
        event, unread, error = self.event(encoded)
        return attrs.evolve(Change.stored(event), unread=unread, error=error)

    def corrupt(self, error: CorruptItemError) -> Change:
        """The change of an item too malformed to read as a record: it carries ``error``."""
        event = _corrupt_envelope(error)
        return attrs.evolve(Change.stored(event), unread=not self._may_read(event), error=error)

    def change(
        self,
        kind: ChangeKind,
        new: EncodedEvent,
        old: EncodedEvent | None,
        *,
        shard_id: str | None,
        sequence_number: str,
        created: datetime,
        expired: bool = False,
    ) -> Change:
        """A stream record's change: ``new`` (the old image for a removal) and, for a modification, ``old``."""
        event, unread, error = self.event(new)
        previous = None
        if old is not None and not unread and error is None:
            previous, _, error = self.event(old)
        return Change(
            kind=kind,
            event=event,
            previous=previous,
            shard_id=shard_id,
            sequence_number=sequence_number,
            approximate_creation_time=created,
            expired=expired,
            unread=unread,
            error=error,
        )

    def _may_read(self, event: StoredEvent) -> bool:
        """Whether a corrupt item might be read (an unreadable type is taken as read, within the aggregate types)."""
        types = self.selection.aggregate_types
        if types is not None and event.aggregate_type not in types:
            return False
        names = self.selection.event_types
        return names is None or event.event_type in names or event.event_type.startswith("<")
