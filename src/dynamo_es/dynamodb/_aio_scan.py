"""Reading the whole events table on aiobotocore: Scan segments as concurrent tasks, for async rebuilds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any, TypeVar

from ._scan import ItemReader, events_of, scan_page
from .flows.base import drive_async
from .schema.model import EventItemCodec

__all__ = ["scan_events_async"]

T = TypeVar("T")
_DONE = object()


async def scan_events_async(
    client: Any,
    table: str,
    codec: EventItemCodec,
    decode: ItemReader[T],
    *,
    segments: int,
    page_size: int,
    filters: Mapping[str, Any] | None = None,
) -> AsyncGenerator[list[T], None]:
    """Pages of events from ``segments`` Scan segments read by concurrent tasks, as they arrive.

    The same requests as the sync store's scan; within a segment, one stream's events come in
    version order. Leaving the iteration early cancels the readers.
    """
    total = max(segments, 1)
    pages: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * total)
    readers = [
        asyncio.create_task(_read_segment(client, table, (n, total), page_size, pages, filters)) for n in range(total)
    ]
    try:
        finished = 0
        while finished < total:
            page = await pages.get()
            if page is _DONE:
                finished += 1
            elif isinstance(page, BaseException):
                raise page
            else:
                yield events_of(page, codec, decode)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


async def _read_segment(
    client: Any,
    table: str,
    segment: tuple[int, int],
    page_size: int,
    pages: asyncio.Queue[Any],
    filters: Mapping[str, Any] | None,
) -> None:
    start: dict[str, Any] | None = None
    try:
        while True:
            page = await drive_async(scan_page(table, segment, page_size, start, filters), client)
            await pages.put(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    except Exception as error:  # noqa: BLE001 (handed to the reader, which raises it)
        await pages.put(error)
    await pages.put(_DONE)
