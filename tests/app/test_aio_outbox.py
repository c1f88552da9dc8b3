"""The async outbox dispatcher: async publishers, tasks splitting the work, stopping on the loop.

Its claims, ordering and retries are the sync dispatcher's; tests/app/test_outbox.py runs that
suite on the async stores too. These cases cover what only the async one has.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import pytest

from dynamo_es import StoredEvent
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncOutboxDispatcher

from ..conftest import Account


async def opened(store: AsyncInMemoryEventStore, count: int) -> list[str]:
    """``count`` new accounts (two events each: opened, credited)."""
    ids = [f"acc-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for account_id in ids:
        account = Account.open(account_id, balance=5)
        await store.append(account_id, account.aggregate_type, account.uncommitted_events, 0)
    return ids


class TestAsyncOutboxDispatcher:
    def test_an_async_publisher_is_awaited_and_tasks_split_the_work(self) -> None:
        """Three dispatcher tasks with a coroutine publisher: every event once, each aggregate in order."""
        published: list[StoredEvent] = []

        async def publish(stored: StoredEvent) -> None:
            await asyncio.sleep(0.001)
            published.append(stored)

        async def scenario() -> tuple[list[str], int]:
            store = AsyncInMemoryEventStore()
            ids = await opened(store, 10)
            workers = [AsyncOutboxDispatcher(store, publish) for _ in range(3)]
            await asyncio.gather(*(w.run(stop_when_idle=True, poll_interval=0.01) for w in workers))
            return ids, await store.count_undispatched()

        ids, left = asyncio.run(scenario())
        assert left == 0
        assert sorted((e.aggregate_id, e.version) for e in published) == sorted((i, v) for i in ids for v in (1, 2))
        for account_id in ids:
            assert [e.version for e in published if e.aggregate_id == account_id] == [1, 2]

    def test_stop_ends_a_backoff_at_once(self) -> None:
        """stop() while run() waits (a backoff of up to 60 s, or its poll) makes it return without waiting it out."""

        async def publish(stored: StoredEvent) -> None:
            raise ConnectionError("broker down")

        async def scenario() -> float:
            store = AsyncInMemoryEventStore()
            await opened(store, 1)
            dispatcher = AsyncOutboxDispatcher(store, publish, base_delay=60, max_delay=60)
            running = asyncio.create_task(dispatcher.run(poll_interval=60))
            await asyncio.sleep(0.05)
            began = time.monotonic()
            dispatcher.stop()
            await asyncio.wait_for(running, 5)
            return time.monotonic() - began

        assert asyncio.run(scenario()) < 1

    @pytest.mark.timing
    def test_a_slow_publisher_does_not_hold_other_tasks(self) -> None:
        """While an async publish waits, other tasks on the loop run; every event is still published, in order."""
        ticks: list[float] = []
        published: list[tuple[str, int]] = []

        async def publish(stored: StoredEvent) -> None:
            await asyncio.sleep(0.05)
            published.append((stored.aggregate_id, stored.version))

        async def ticker() -> None:
            for _ in range(10):
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        async def scenario() -> list[str]:
            store = AsyncInMemoryEventStore()
            ids = await opened(store, 2)
            await asyncio.gather(AsyncOutboxDispatcher(store, publish).dispatch_once(), ticker())
            return ids

        ids = asyncio.run(scenario())
        assert sorted(published) == sorted((i, v) for i in ids for v in (1, 2))
        assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.04
