"""Outbox reads and writes on the events table: the sparse ``outbox`` index."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

from pynamodb.connection import TableConnection

from .._events import StoredEvent
from .._serialization import EncodedEvent
from ..exceptions import EventStoreError
from ._errors import BOUNDARY_ERRORS, Failure, classify
from ._model import OUTBOX_INDEX, EventItem, EventItemCodec

__all__ = ["count_undispatched", "iter_undispatched", "mark_dispatched"]


def _partition_pages(
    table: TableConnection, partition: str, page_size: int, **options: Any
) -> Iterator[dict[str, Any]]:
    start_key: dict[str, Any] | None = None
    while True:
        try:
            page = table.query(
                partition, index_name=OUTBOX_INDEX, limit=page_size, exclusive_start_key=start_key, **options
            )
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read the outbox index: {error}") from error
        yield page
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return


def _partition_records(
    table: TableConnection, partition: str, codec: EventItemCodec, page_size: int
) -> Iterator[EncodedEvent]:
    for page in _partition_pages(table, partition, page_size, scan_index_forward=True):
        for item in page.get("Items", ()):
            yield codec.decode(item)


def iter_undispatched(
    table: TableConnection,
    codec: EventItemCodec,
    decode: Callable[[EncodedEvent], StoredEvent],
    *,
    page_size: int,
) -> Iterator[StoredEvent]:
    """Undispatched events, oldest first across the outbox partitions, read page by page."""
    partitions = [_partition_records(table, str(p), codec, page_size) for p in range(codec.model.outbox_partitions)]
    merged = heapq.merge(*partitions, key=lambda record: (record.timestamp, record.stream_id, record.version))
    for record in merged:
        yield decode(record)


def count_undispatched(table: TableConnection, model: type[EventItem]) -> int:
    """How many events the outbox index holds (a COUNT query per partition)."""
    total = 0
    for partition in range(model.outbox_partitions):
        for page in _partition_pages(table, str(partition), 1000, select="COUNT"):
            total += int(page.get("Count", 0))
    return total


def mark_dispatched(model: type[EventItem], stream_id: str, version: int) -> bool:
    """Set ``isDispatched`` and drop the event from the outbox index; False if it already was."""
    item = model(stream_id, version)
    try:
        item.update(
            actions=[model.is_dispatched.set(True), model.outbox_pending.remove()],
            condition=model.outbox_pending.exists(),
        )
    except BOUNDARY_ERRORS as error:
        if classify(error)[0] is Failure.CONFLICT:
            return False
        raise EventStoreError(f"cannot mark {stream_id} version {version} dispatched: {error}") from error
    return True
