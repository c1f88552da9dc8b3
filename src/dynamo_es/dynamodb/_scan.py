"""Reading the whole events table: a parallel, strongly consistent Scan, for projection rebuilds."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .._events import StoredEvent
from .._serialization import EncodedEvent
from ..exceptions import EventStoreError
from ._errors import BOUNDARY_ERRORS
from ._model import EventItemCodec

__all__ = ["scan_events"]

_DONE = object()


def scan_events(
    client: Any,
    table: str,
    codec: EventItemCodec,
    decode: Callable[[EncodedEvent], StoredEvent],
    *,
    segments: int,
    page_size: int,
) -> Iterator[list[StoredEvent]]:
    """Pages of events from ``segments`` parallel Scan segments; items that are not events are skipped.

    Each segment is read by a thread of its own; pages are yielded as they arrive. Within a
    segment, one stream's events come in version order.
    """
    if segments <= 1:
        for items in _segment_pages(client, table, None, page_size):
            yield _events(items, codec, decode)
        return
    pages: queue.Queue[Any] = queue.Queue(maxsize=2 * segments)
    stop = threading.Event()
    workers = [
        threading.Thread(target=_read_segment, args=(client, table, (n, segments), page_size, pages, stop), daemon=True)
        for n in range(segments)
    ]
    for worker in workers:
        worker.start()
    try:
        yield from _drain(pages, segments, codec, decode)
    finally:
        stop.set()


def _drain(
    pages: queue.Queue[Any], segments: int, codec: EventItemCodec, decode: Callable[[EncodedEvent], StoredEvent]
) -> Iterator[list[StoredEvent]]:
    finished = 0
    while finished < segments:
        page = pages.get()
        if page is _DONE:
            finished += 1
        elif isinstance(page, BaseException):
            raise page
        else:
            yield _events(page, codec, decode)


def _read_segment(
    client: Any, table: str, segment: tuple[int, int], page_size: int, pages: queue.Queue[Any], stop: threading.Event
) -> None:
    try:
        for items in _segment_pages(client, table, segment, page_size):
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


def _segment_pages(client: Any, table: str, segment: tuple[int, int] | None, page_size: int) -> Iterator[list[Any]]:
    start_key: dict[str, Any] | None = None
    options: dict[str, Any] = {} if segment is None else {"Segment": segment[0], "TotalSegments": segment[1]}
    while True:
        if start_key is not None:
            options["ExclusiveStartKey"] = start_key
        try:
            page = client.scan(TableName=table, Limit=page_size, ConsistentRead=True, **options)
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot scan {table}: {error}") from error
        yield page.get("Items", [])
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return


def _events(
    items: list[Any], codec: EventItemCodec, decode: Callable[[EncodedEvent], StoredEvent]
) -> list[StoredEvent]:
    return [decode(codec.decode(item)) for item in items if codec.is_event(item)]
