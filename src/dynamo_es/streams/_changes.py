"""Changes from a DynamoDB stream, the position a reader has reached, and record decoding."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from .._events import StoredEvent
from .._serialization import EventSerializer
from ..dynamodb._model import encoded_from_raw
from ..exceptions import SubscriptionError

__all__ = ["Change", "ChangeKind", "StreamPosition", "record_decoder"]


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
    """One record of the events table's stream, decoded.

    Attributes:
        kind: insert, modify or remove.
        event: the stored event from the item's new image (the old image for a removal).
        previous: for a modification, the event as it was before.
        shard_id: the stream shard the record came from (None when Lambda delivered it).
        sequence_number: the record's sequence number within its shard.
        approximate_creation_time: when DynamoDB wrote the record (UTC).
    """

    kind: ChangeKind
    event: StoredEvent
    shard_id: str | None
    sequence_number: str
    approximate_creation_time: datetime
    previous: StoredEvent | None = None


@attrs.frozen
class StreamPosition:
    """How far a reader got: the last sequence number delivered, per shard.

    Pass it to ``subscribe_to_changes(position)`` to resume after those records. Shards it
    does not name are read from their beginning.
    """

    shards: Mapping[str, str] = attrs.field(factory=dict)

    def after(self, change: Change) -> StreamPosition:
        """This position moved past ``change``."""
        return self.after_all((change,))

    def after_all(self, changes: Iterable[Change]) -> StreamPosition:
        """This position moved past every change in ``changes``."""
        shards = dict(self.shards)
        for change in changes:
            if change.shard_id is not None:
                shards[change.shard_id] = change.sequence_number
        return StreamPosition(shards)


RecordDecoder = Callable[[Mapping[str, Any], "str | None"], Change]


def record_decoder(serializer: EventSerializer, partition_key: str) -> RecordDecoder:
    """A function turning one stream record (GetRecords or Lambda shape) into a :class:`Change`."""

    def image(record: Mapping[str, Any], name: str) -> StoredEvent | None:
        raw = record["dynamodb"].get(name)
        return None if raw is None else serializer.decode(encoded_from_raw(raw, partition_key))

    def decode(record: Mapping[str, Any], shard_id: str | None) -> Change:
        kind = ChangeKind(record["eventName"])
        new, old = image(record, "NewImage"), image(record, "OldImage")
        current = old if kind is ChangeKind.REMOVE else new
        if current is None:
            raise SubscriptionError(
                f"stream record {record['dynamodb'].get('SequenceNumber')} has no item image; "
                "the table's stream must be NEW_AND_OLD_IMAGES (or NEW_IMAGE)"
            )
        return Change(
            kind=kind,
            event=current,
            previous=old if kind is ChangeKind.MODIFY else None,
            shard_id=shard_id,
            sequence_number=str(record["dynamodb"]["SequenceNumber"]),
            approximate_creation_time=_creation_time(record["dynamodb"].get("ApproximateCreationDateTime")),
        )

    return decode


def _creation_time(value: Any) -> datetime:
    """Botocore gives a datetime; a Lambda event gives epoch seconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)
