"""Reading the whole events table: a parallel, strongly consistent Scan, for projection rebuilds."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from ..core.changes import Change
from ..core.reading import ChangeDecoder, Selection
from ..core.serialization import EventSerializer
from ..domain.events import StoredEvent
from ..exceptions import CorruptItemError, EventStoreError
from .flows.base import Call, Flow, drive
from .flows.errors import BOUNDARY_ERRORS
from .schema.model import EventItemCodec

__all__ = ["ItemReader", "change_reader", "event_reader", "events_of", "scan_events", "scan_page"]

T = TypeVar("T")
ItemReader = Callable[[Mapping[str, Any]], T]
"""Turns one event item (wire format) into what a read returns: a stored event, or a change."""
_DONE = object()


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


def scan_events(
    client: Any,
    table: str,
    codec: EventItemCodec,
    decode: ItemReader[T],
    *,
    segments: int,
    page_size: int,
    filters: Mapping[str, Any] | None = None,
) -> Iterator[list[T]]:
    """Pages of events from ``segments`` parallel Scan segments; items that are not events are skipped.

    ``filters`` (a FilterExpression and its names and values) leaves items out on the server.

    Each segment is read by a thread of its own; pages are yielded as they arrive. Within a
    segment, one stream's events come in version order.
    """
    if segments <= 1:
        for items in _segment_pages(client, table, None, page_size, filters):
            yield events_of(items, codec, decode)
        return
    pages: queue.Queue[Any] = queue.Queue(maxsize=2 * segments)
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=_read_segment, args=(client, table, (n, segments), page_size, pages, stop, filters), daemon=True
        )
        for n in range(segments)
    ]
    for worker in workers:
        worker.start()
    try:
        yield from _drain(pages, segments, codec, decode)
    finally:
        stop.set()


def _drain(pages: queue.Queue[Any], segments: int, codec: EventItemCodec, decode: ItemReader[T]) -> Iterator[list[T]]:
    finished = 0
    while finished < segments:
        page = pages.get()
        if page is _DONE:
            finished += 1
        elif isinstance(page, BaseException):
            raise page
        else:
            yield events_of(page, codec, decode)


def _read_segment(
    client: Any,
    table: str,
    segment: tuple[int, int],
    page_size: int,
    pages: queue.Queue[Any],
    stop: threading.Event,
    filters: Mapping[str, Any] | None,
) -> None:
    try:
        for items in _segment_pages(client, table, segment, page_size, filters):
            if not _put(pages, items, stop):
                return
    except EventStoreError as error:
        _put(pages, error, stop)
    finally:
        _put(pages, _DONE, stop)


def _put(pages: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Hand ``item`` to the reader; False once the reader has gone (no thread blocks on a full queue)."""
    while not stop.is_set():
        try:
            pages.put(item, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


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


def _segment_pages(
    client: Any, table: str, segment: tuple[int, int] | None, page_size: int, filters: Mapping[str, Any] | None
) -> Iterator[list[Any]]:
    start_key: dict[str, Any] | None = None
    while True:
        page = drive(scan_page(table, segment, page_size, start_key, filters), client)
        yield page.get("Items", [])
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return


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
