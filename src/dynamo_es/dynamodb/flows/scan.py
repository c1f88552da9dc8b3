"""Reading the whole events table: one Scan page as a flow, the filter of a selection, items to events or changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ...core.changes import Change
from ...core.reading import ChangeDecoder, Selection
from ...core.serialization import EventSerializer
from ...domain.events import StoredEvent
from ...exceptions import CorruptItemError, EventStoreError
from ..schema.model import EventItemCodec
from .base import Call, Flow
from .errors import BOUNDARY_ERRORS

__all__ = ["ItemReader", "change_reader", "event_reader", "events_of", "scan_page", "selection_filter"]

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
