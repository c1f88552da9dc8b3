"""Items and stream records into events and changes: Scan pages, GetRecords and Lambda shapes alike.

Also the filter of a selection for a Scan, and a subscription's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from ...core.changes import Change, ChangeKind, StreamPosition
from ...core.reading import ChangeDecoder, Selection
from ...core.serialization import EventSerializer
from ...domain.events import StoredEvent
from ...exceptions import CorruptItemError, EventStoreError, SubscriptionError
from ...ports.source import StartAt, TrimmedPolicy
from ...settings import EventStoreSettings
from ..schema.model import EventItemCodec
from .base import Call, Flow
from .errors import BOUNDARY_ERRORS
from .stream_reader import RecordDecoder, creation_time

__all__ = [
    "ItemReader",
    "change_reader",
    "event_reader",
    "events_of",
    "record_decoder",
    "scan_page",
    "selection_filter",
    "subscription_arguments",
]

_TTL_PRINCIPAL = "dynamodb.amazonaws.com"
"""The ``userIdentity.principalId`` of a REMOVE record that DynamoDB's TTL wrote."""
_LOCAL_TTL_REMOVAL = "UNKNOWN_TO_SDK_VERSION"
"""DynamoDB Local's eventName for its own TTL removals (its Java SDK's name for a value it lacks)."""

T = TypeVar("T")
ItemReader = Callable[[Mapping[str, Any]], T]
"""Turns one event item (wire format) into what a read returns: a stored event, or a change."""


def event_reader(codec: EventItemCodec, serializer: EventSerializer) -> ItemReader[StoredEvent]:
    """Items to stored events, strictly: a corrupt item or an unknown type raises."""
    decode = serializer.decode
    return lambda item: decode(codec.decode(item))


def change_reader(codec: EventItemCodec, decoder: ChangeDecoder) -> ItemReader[Change]:
    """Items to stored changes for one reader: unread ones undecoded, bad ones carrying their error."""

    def read(item: Mapping[str, Any]) -> Change:
        try:
            encoded = codec.decode(item)
        except CorruptItemError as error:
            return decoder.corrupt(error)
        return decoder.stored(encoded)

    return read


def scan_page(
    table: str,
    segment: tuple[int, int] | None,
    page_size: int,
    start: dict[str, Any] | None,
    filters: Mapping[str, Any] | None = None,
) -> Flow[Any]:
    """One strongly consistent Scan page (of ``segment``: (number, total), or of the whole table)."""
    params: dict[str, Any] = {"TableName": table, "Limit": page_size, "ConsistentRead": True, **(filters or {})}
    if segment is not None:
        params.update(Segment=segment[0], TotalSegments=segment[1])
    if start is not None:
        params["ExclusiveStartKey"] = start
    try:
        return (yield Call("scan", params))
    except BOUNDARY_ERRORS as error:
        raise EventStoreError(f"cannot scan {table}: {error}") from error


def selection_filter(codec: EventItemCodec, selection: Selection) -> dict[str, Any] | None:
    """A Scan filter keeping only the selection's aggregate types (the server then sends no other item).

    Only aggregate types: a stream is then read whole or not at all, so no unread version leaves
    a gap. None when the selection names no aggregate types (or over 100, DynamoDB's IN limit).
    """
    names = sorted(selection.aggregate_types or ())
    if not names or len(names) > 100:
        return None
    values = {f":aggregateType{n}": {"S": name} for n, name in enumerate(names)}
    return {
        "FilterExpression": f"#aggregateType IN ({', '.join(values)})",
        "ExpressionAttributeNames": {"#aggregateType": codec.aggregate_type_attribute},
        "ExpressionAttributeValues": values,
    }


def events_of(items: list[Any], codec: EventItemCodec, decode: ItemReader[T]) -> list[T]:
    """The events among a Scan page's items, read by ``decode`` (other entities skipped)."""
    return [decode(item) for item in items if codec.is_event(item)]


def subscription_arguments(
    settings: EventStoreSettings,
    description: Mapping[str, Any],
    decode: RecordDecoder,
    position: StreamPosition | None,
    *,
    start_at: StartAt,
    on_trimmed: TrimmedPolicy,
) -> dict[str, Any]:
    """What a `Subscription` or an `AsyncSubscription` takes after its client, for the table ``description`` shows.

    Raises:
        SubscriptionError: the table has no stream (``enable_streams`` off).
    """
    stream_arn = description.get("LatestStreamArn")
    if not description.get("StreamSpecification", {}).get("StreamEnabled") or not stream_arn:
        raise SubscriptionError(f"table {settings.events_table_name!r} has no stream; set enable_streams")
    return {
        "stream_arn": stream_arn,
        "decode": decode,
        "position": position or StreamPosition(),
        "poll_interval": settings.streams_poll_interval_ms / 1000,
        "start_at": start_at,
        "on_trimmed": on_trimmed,
    }


def record_decoder(
    serializer: EventSerializer, codec: EventItemCodec, selection: Selection | None = None
) -> RecordDecoder:
    """A function turning one stream record (GetRecords or Lambda shape) into a [`Change`][dynamo_es.Change].

    It returns None for a record whose item is not an event (another entity type in a
    single-table design). A record outside ``selection`` becomes an unread change (its event
    data is not decoded); one that cannot be decoded, a change carrying its error.
    """
    decoder = ChangeDecoder(serializer, selection)

    def decode(record: Mapping[str, Any], shard_id: str | None) -> Change | None:
        stream_record = record["dynamodb"]
        kind = _kind(record)
        image = stream_record.get("OldImage" if kind is ChangeKind.REMOVE else "NewImage")
        if image is None:
            if kind is ChangeKind.REMOVE and "NewImage" not in stream_record and _view(stream_record) == "NEW_IMAGE":
                return None  # a NEW_IMAGE stream says nothing of what a removal removed
            raise _no_image(stream_record, kind)
        if not codec.is_event(image):
            return None
        old = stream_record.get("OldImage") if kind is ChangeKind.MODIFY else None
        where: dict[str, Any] = {
            "shard_id": shard_id,
            "sequence_number": str(stream_record.get("SequenceNumber") or ""),
            "created": creation_time(stream_record.get("ApproximateCreationDateTime")),
            "expired": kind is ChangeKind.REMOVE and _by_ttl(record),
        }
        try:
            new, previous = codec.decode(image), None if old is None else codec.decode(old)
        except CorruptItemError as error:
            return _corrupt_change(decoder, error, kind, where)
        return decoder.change(kind, new, previous, **where)

    return decode


def _corrupt_change(decoder: ChangeDecoder, error: CorruptItemError, kind: ChangeKind, where: dict[str, Any]) -> Change:
    change = decoder.corrupt(error)
    return attrs.evolve(
        change,
        kind=kind,
        shard_id=where["shard_id"],
        sequence_number=where["sequence_number"],
        approximate_creation_time=where["created"],
        expired=where["expired"],
    )


def _kind(record: Mapping[str, Any]) -> ChangeKind:
    if record.get("eventName") == _LOCAL_TTL_REMOVAL:
        return ChangeKind.REMOVE
    try:
        return ChangeKind(record.get("eventName"))
    except ValueError:
        raise SubscriptionError(
            f"stream record has eventName {record.get('eventName')!r}, not INSERT, MODIFY or REMOVE"
        ) from None


def _view(stream_record: Mapping[str, Any]) -> str:
    return str(stream_record.get("StreamViewType") or ("KEYS_ONLY" if "Keys" in stream_record else "unknown"))


def _no_image(stream_record: Mapping[str, Any], kind: ChangeKind) -> SubscriptionError:
    needed = "OldImage" if kind is ChangeKind.REMOVE else "NewImage"
    return SubscriptionError(
        f"stream record {stream_record.get('SequenceNumber')} ({kind.value}) has no {needed}: the stream view is "
        f"{_view(stream_record)}; dynamo-es needs the table's stream view to be NEW_AND_OLD_IMAGES "
        "(NEW_IMAGE also works, without removals)"
    )


def _by_ttl(record: Mapping[str, Any]) -> bool:
    if record.get("eventName") == _LOCAL_TTL_REMOVAL:
        return True
    identity = record.get("userIdentity") or {}
    return isinstance(identity, Mapping) and identity.get("principalId") == _TTL_PRINCIPAL
