"""What sync and async do differently: merged sources, replays in slices, page sizes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, datetime

import attrs
import pytest

from dynamo_es import AggregateRoot, EventMetadata, EventRegistry, StoredEvent, applies, event
from dynamo_es.core.backends import asyncio as async_backend
from dynamo_es.core.backends import sync as sync_backend


@event(name="BackendsAdded", registry=EventRegistry())
@attrs.frozen
class Added:
    amount: int


class Counter(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.total = 0

    @applies(Added)
    def _added(self, added: Added) -> None:
        self.total += added.amount


def stored(count: int) -> list[StoredEvent]:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        StoredEvent(
            stream_id="Counter:c",
            aggregate_id="c",
            aggregate_type="Counter",
            version=n,
            event_id=str(n),
            event_type="BackendsAdded",
            timestamp=when,
            event=Added(1),
            metadata=EventMetadata(),
        )
        for n in range(1, count + 1)
    ]


def test_the_async_replay_lets_other_tasks_run_and_ends_as_the_sync_one() -> None:
    """1,200 events: another task runs between slices; the state and version match a replay in one go."""
    events, ran_during = stored(1200), []

    async def scenario() -> Counter:
        counter = Counter("c")

        async def other() -> None:
            ran_during.append(counter.version)

        task = asyncio.create_task(other())
        await async_backend.replay(counter, events)
        await task
        return counter

    counter, reference = asyncio.run(scenario()), Counter("c")
    sync_backend.replay(reference, events)
    assert (counter.total, counter.version) == (reference.total, reference.version) == (1200, 1200)
    assert ran_during and 0 < ran_during[0] < 1200


def test_merged_threads_deliver_every_item_and_raise_a_sources_error() -> None:
    """Each source on a thread of its own; all items arrive; a failing source's error is raised to the reader."""

    def numbers(start: int) -> Iterator[int]:
        yield from range(start, start + 3)

    assert sorted(sync_backend.merged([lambda: numbers(0), lambda: numbers(10)])) == [0, 1, 2, 10, 11, 12]

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("source failed")

    with pytest.raises(ValueError, match="source failed"):
        list(sync_backend.merged([lambda: numbers(0), failing]))


def test_closing_merged_early_stops_its_threads() -> None:
    """A reader that leaves after one item leaves no thread blocked on a full queue."""
    before = threading.active_count()

    def endless() -> Iterator[int]:
        n = 0
        while True:
            n += 1
            yield n

    merged = sync_backend.merged([endless, endless])
    assert next(merged) >= 1
    merged.close()
    for _ in range(50):
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.05)
    assert threading.active_count() <= before


def test_merged_tasks_deliver_every_item_and_raise_a_sources_error() -> None:
    """The asyncio twin: tasks instead of threads, the same results."""

    async def numbers(start: int) -> AsyncGenerator[int, None]:
        for n in range(start, start + 3):
            await asyncio.sleep(0)
            yield n

    async def failing() -> AsyncGenerator[int, None]:
        yield 1
        raise ValueError("source failed")

    async def scenario() -> list[int]:
        items = [n async for n in async_backend.merged([lambda: numbers(0), lambda: numbers(10)])]
        with pytest.raises(ValueError, match="source failed"):
            _ = [n async for n in async_backend.merged([lambda: numbers(0), failing])]
        return sorted(items)

    assert asyncio.run(scenario()) == [0, 1, 2, 10, 11, 12]


def test_async_loads_read_smaller_pages() -> None:
    """Each page is parsed on the loop: the async store's default page is small; the sync one reads 1 MB pages."""
    assert async_backend.PAGE_ITEMS == 250 and sync_backend.PAGE_ITEMS is None
