"""AsyncProjection: what only the async one has (async handlers, stopping on the loop, sync ports mixed in).

Its rules are the sync projection's; tests/projections/test_projection.py and the DynamoDB
projection suites run their cases on both.
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections import defaultdict
from collections.abc import Generator

import attrs

from dynamo_es import Change, InMemoryCheckpointStore, InMemoryEventStore, event
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncProjection


@event(name="aio-projection-tests.Counted")
@attrs.frozen
class Counted:
    n: int


async def write(store: AsyncInMemoryEventStore, streams: int, events: int) -> list[str]:
    """``events`` events on each of ``streams`` aggregates; their stream ids."""
    for n in range(streams):
        await store.append(f"agg-{n}", "Counter", [Counted(i) for i in range(events)], 0)
    return [f"Counter:agg-{n}" for n in range(streams)]


class Pending:
    """An awaitable that never completes (the test drives the coroutine by hand, without a loop)."""

    def __await__(self) -> Generator[None, None, None]:
        yield


class TestAsyncProjection:
    def test_a_coroutine_handler_is_awaited_in_version_order(self) -> None:
        """An async handler that awaits I/O sees each aggregate's versions in order, each once."""
        seen: dict[str, list[int]] = defaultdict(list)

        async def handler(change: Change) -> None:
            await asyncio.sleep(0)
            seen[change.event.stream_id].append(change.event.version)

        async def scenario() -> tuple[int, list[str]]:
            store = AsyncInMemoryEventStore()
            streams = await write(store, 3, 4)
            applied = await AsyncProjection("p", handler, InMemoryCheckpointStore(), store).run(stop_when_idle=True)
            return applied, streams

        applied, streams = asyncio.run(scenario())
        assert applied == 12 and all(seen[s] == [1, 2, 3, 4] for s in streams)

    def test_stop_on_the_loop_ends_a_live_run_at_once(self) -> None:
        """A run waiting for changes returns as soon as stop() is called, and has applied what came."""
        seen: list[int] = []

        async def scenario() -> float:
            store = AsyncInMemoryEventStore(InMemoryEventStore())
            projection = AsyncProjection("p", lambda c: seen.append(c.event.version), InMemoryCheckpointStore(), store)
            running = asyncio.create_task(projection.run())
            await write(store, 1, 2)
            while len(seen) < 2:
                await asyncio.sleep(0.01)
            began = time.monotonic()
            projection.stop()
            await asyncio.wait_for(running, 5)
            return time.monotonic() - began

        assert asyncio.run(scenario()) < 1 and seen == [1, 2]

    def test_a_failing_async_handler_is_retried_then_parked(self) -> None:
        """An async handler that keeps raising parks its aggregate; the others are applied."""
        seen: list[str] = []

        async def handler(change: Change) -> None:
            if change.event.aggregate_id == "agg-0":
                raise RuntimeError("read model down")
            seen.append(change.event.stream_id)

        async def scenario() -> dict[str, object]:
            store = AsyncInMemoryEventStore()
            await write(store, 2, 2)
            projection = AsyncProjection("p", handler, InMemoryCheckpointStore(), store, retry_delay=0.001)
            await projection.run(stop_when_idle=True)
            return dict(await projection.parked())

        parked = asyncio.run(scenario())
        assert list(parked) == ["Counter:agg-0"] and seen == ["Counter:agg-1", "Counter:agg-1"]

    def test_a_stop_while_the_subscription_opens_is_not_lost(self) -> None:
        """stop() right after run() was started (before it subscribed) ends that run; the next run works."""
        seen: list[int] = []

        async def scenario() -> tuple[int, int]:
            store = AsyncInMemoryEventStore()
            await write(store, 1, 2)
            projection = AsyncProjection("p", lambda c: seen.append(c.event.version), InMemoryCheckpointStore(), store)
            running = asyncio.create_task(projection.run())
            projection.stop()
            stopped = await asyncio.wait_for(running, 5)
            return stopped, await projection.run(stop_when_idle=True)

        assert asyncio.run(scenario()) == (0, 2) and seen == [1, 2]

    def test_a_handle_closed_midway_runs_nothing_more(self) -> None:
        """handle() closed while its handler awaits (its task collected, its loop gone): nothing runs or raises."""
        store = InMemoryEventStore()
        store.append("agg-0", "Counter", [Counted(0), Counted(1)], 0).raise_for_failure()
        checkpoints = InMemoryCheckpointStore()

        async def handler(change: Change) -> None:
            if change.event.version == 2:
                await Pending()

        projection = AsyncProjection("p", handler, checkpoints, AsyncInMemoryEventStore(store))
        coroutine = projection.handle(store.subscribe_to_changes().poll())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            coroutine.send(None)  # version 1 applied; version 2's handler waits
            coroutine.close()
            gc.collect()
        assert checkpoints.load_progress("p", ["Counter:agg-0"]) == {}  # delivered again later: at least once
