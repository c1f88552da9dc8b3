"""Reading the whole events table: a parallel, strongly consistent Scan, for projection rebuilds."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, Mapping
from typing import Any, TypeVar

from ...core.backends.asyncio import merged
from ..flows.base import drive_async
from ..flows.records import ItemReader, events_of, scan_page
from ..schema.model import EventItemCodec
from ..wire.aio_client import LazyAsyncClient

__all__ = ["scan_events"]

T = TypeVar("T")


async def scan_events(
    client: LazyAsyncClient,
    table: str,
    codec: EventItemCodec,
    decode: ItemReader[T],
    *,
    segments: int,
    page_size: int,
    filters: Mapping[str, Any] | None = None,
) -> AsyncGenerator[list[T], None]:
    """Pages of events from ``segments`` parallel Scan segments; items that are not events are skipped.

    ``filters`` (a FilterExpression and its names and values) leaves items out on the server.
    Each segment is read concurrently (a task, or a thread in the sync store); pages are
    yielded as they arrive. Within a segment, one stream's events come in version order.
    Leaving the iteration early stops the segment readers at once.
    """
    total = max(segments, 1)
    readers = [
        functools.partial(_segment_pages, client, table, (n, total) if total > 1 else None, page_size, filters)
        for n in range(total)
    ]
    async with contextlib.aclosing(merged(readers)) as pages:
        async for items in pages:
            yield events_of(items, codec, decode)


async def _segment_pages(
    client: LazyAsyncClient,
    table: str,
    segment: tuple[int, int] | None,
    page_size: int,
    filters: Mapping[str, Any] | None,
) -> AsyncGenerator[list[Any], None]:
    start_key: dict[str, Any] | None = None
    while True:
        page = await drive_async(scan_page(table, segment, page_size, start_key, filters), await client.get())
        yield page.get("Items", [])
        start_key = page.get("LastEvaluatedKey")
        if not start_key:
            return
