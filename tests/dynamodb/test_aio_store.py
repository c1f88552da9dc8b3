"""The async DynamoDB store on DynamoDB Local: racing tasks, cancellation, and a loop that is never blocked."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Callable, Iterator

import attrs
import pytest

from dynamo_es import (
    AppendResult,
    ConcurrencyError,
    DynamoDBEventStore,
    EventStoreSettings,
    EveryNEvents,
    NewEvent,
    event,
)
from dynamo_es.aio import AsyncRepository, AsyncUnitOfWork
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore, AsyncDynamoDBSnapshotStore
from dynamo_es.exceptions import EventStoreError, InvalidStreamError
from dynamo_es.testing import DynamoDBLocal, FaultProxy

from ..conftest import Account

pytestmark = pytest.mark.ddblocal


@event(name="AioNoted")
@attrs.frozen
class Noted:
    n: int
    text: str = "x" * 100


def fresh_id() -> str:
    return f"aio-{uuid.uuid4().hex[:8]}"


class TestConcurrency:
    def test_racing_tasks_on_one_aggregate_have_one_winner_per_version(self, events_table: EventStoreSettings) -> None:
        """Three rounds of eight tasks saving the same loaded version: one winner each round, the rest conflict."""

        async def scenario() -> list[list[BaseException | int]]:
            async with AsyncDynamoDBEventStore(events_table) as store:
                accounts = AsyncRepository(Account, store)
                account_id = fresh_id()
                await accounts.save(Account.open(account_id))
                rounds = []
                for _ in range(3):
                    copies = [await accounts.get(account_id) for _ in range(8)]
                    for copy in copies:
                        copy.credit(1)
                    rounds.append(await asyncio.gather(*(accounts.save(c) for c in copies), return_exceptions=True))
                return rounds

        for number, outcomes in enumerate(asyncio.run(scenario()), start=2):
            assert outcomes.count(number) == 1, outcomes
            assert sum(isinstance(outcome, ConcurrencyError) for outcome in outcomes) == 7

    def test_a_unit_of_work_commits_two_aggregates_in_one_transaction(self, events_table: EventStoreSettings) -> None:
        """The async unit of work moves money between two accounts atomically."""

        async def scenario() -> tuple[int, int]:
            async with AsyncDynamoDBEventStore(events_table) as store:
                accounts = AsyncRepository(Account, store)
                alice, bob = Account.open(fresh_id(), balance=30), Account.open(fresh_id())
                for account in (alice, bob):
                    await accounts.save(account)
                unit = AsyncUnitOfWork(store)
                (await unit.get(Account, alice.id)).debit(10)
                (await unit.get(Account, bob.id)).credit(10)
                await unit.commit()
                return (await accounts.get(alice.id)).balance, (await accounts.get(bob.id)).balance

        assert asyncio.run(scenario()) == (20, 10)


class TestCancellation:
    @pytest.fixture
    def slow(
        self, dynamodb_local: DynamoDBLocal, events_table: EventStoreSettings
    ) -> Iterator[tuple[FaultProxy, EventStoreSettings]]:
        with FaultProxy(dynamodb_local.endpoint_url) as proxy:
            yield proxy, attrs.evolve(events_table, endpoint_url=proxy.endpoint_url)

    def test_a_cancelled_append_writes_all_or_nothing_and_its_retry_is_safe(
        self, slow: tuple[FaultProxy, EventStoreSettings]
    ) -> None:
        """Cancelled with its transaction on the wire: 0 or 50 events stored, and the retry writes them once."""
        proxy, settings = slow
        stream = fresh_id()
        envelopes = [NewEvent(Noted(n)) for n in range(50)]

        async def scenario() -> tuple[int, int, list[str]]:
            async with AsyncDynamoDBEventStore(settings) as store:
                await store.ensure_table()
                proxy.inject("TransactWriteItems", "delay", seconds=0.4)
                task = asyncio.create_task(store.append(stream, "Note", envelopes, 0))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await asyncio.sleep(0.6)  # the request, already sent, may still land
                after_cancel = await store.stream_version(stream, "Note")
                retried = await store.append(stream, "Note", envelopes, 0)
                stored = [e.event_id for e in await store.load(stream, "Note")]
                return after_cancel, retried.new_version if retried.success else -1, stored

        after_cancel, new_version, stored = asyncio.run(scenario())
        assert after_cancel in (0, 50)
        assert new_version == 50 and stored == [e.event_id for e in envelopes]


class TestEventLoop:
    def test_a_10000_event_load_leaves_the_loop_running(self, new_table: Callable[..., EventStoreSettings]) -> None:
        """A 1 ms ticker keeps ticking during a 10,000-event load: no request blocks the loop.

        A blocking client would stall the loop for the whole load (ten 1,000-item pages); here the
        longest stall is a fraction of it. What remains is CPU work between requests (a page's
        parse and decode, a garbage collection): the docs and the closing note give its size.
        """
        events_table = new_table()  # no stream: 10,000 writes stay fast on DynamoDB Local
        stream = fresh_id()
        DynamoDBEventStore(events_table).append(
            stream, "Note", [Noted(n) for n in range(10_000)], 0
        ).raise_for_failure()

        async def scenario() -> tuple[float, float, int, int]:
            async with AsyncDynamoDBEventStore(events_table) as store:
                await store.load(stream, "Note", to_version=10)
                stalls: list[float] = []
                loading = True

                async def ticker() -> None:
                    last = time.perf_counter()
                    while loading:
                        await asyncio.sleep(0.001)
                        now = time.perf_counter()
                        stalls.append(now - last)
                        last = now

                # A full collection walks the whole heap, and this test process holds every test module:
                # freezing what exists keeps that cost out, leaving what the load itself allocates.
                gc.collect()
                gc.freeze()
                try:
                    ticking = asyncio.create_task(ticker())
                    began = time.perf_counter()
                    events = await store.load(stream, "Note")
                    took = time.perf_counter() - began
                    loading = False
                    await ticking
                finally:
                    gc.unfreeze()
                return max(stalls), took, len(events), len(stalls)

        longest_stall, load_time, loaded, ticks = asyncio.run(scenario())
        assert loaded == 10_000 and ticks > 10
        assert longest_stall < load_time / 3, (longest_stall, load_time)


class TestSnapshots:
    def test_an_async_repository_loads_from_its_snapshots(self, events_table: EventStoreSettings) -> None:
        """25 events with a snapshot every 10: get() starts at the snapshot of v20 and equals a full replay."""

        async def scenario() -> tuple[int | None, int, int]:
            async with (
                AsyncDynamoDBEventStore(events_table) as store,
                AsyncDynamoDBSnapshotStore(events_table) as snaps,
            ):
                accounts = AsyncRepository(Account, store, snapshots=snaps, snapshot_strategy=EveryNEvents(10))
                account = Account.open(fresh_id())
                await accounts.save(account)
                for _ in range(23):
                    account.credit(1)
                    await accounts.save(account)
                latest = await snaps.load_latest("TestAccount", account.id)
                from_snapshot = await accounts.get(account.id)
                replayed = await AsyncRepository(Account, store).get(account.id)
                return latest.version if latest else None, from_snapshot.balance, replayed.balance

        assert asyncio.run(scenario()) == (20, 23, 23)


class TestLifecycle:
    def test_many_tasks_first_use_checks_the_table_once(
        self, dynamodb_local: DynamoDBLocal, new_table: Callable[..., EventStoreSettings]
    ) -> None:
        """Thirty concurrent first appends on a new table: one table check (one CreateTable), not thirty."""
        with FaultProxy(dynamodb_local.endpoint_url) as proxy:
            settings = attrs.evolve(new_table(), endpoint_url=proxy.endpoint_url)

            async def scenario() -> list[AppendResult]:
                async with AsyncDynamoDBEventStore(settings) as store:
                    return await asyncio.gather(*(store.append(fresh_id(), "Note", [Noted(1)], 0) for _ in range(30)))

            results = asyncio.run(scenario())
        assert all(result.success for result in results)
        operations = [operation for operation, _ in proxy.seen]
        assert operations.count("CreateTable") == 1 and operations.count("DescribeTable") <= 5

    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning")
    def test_a_store_opened_in_another_event_loop_says_so(self, events_table: EventStoreSettings) -> None:
        """Used from a second loop without close(): a clear EventStoreError at once, not retries and a timeout.

        (The first loop's client is left open on purpose: aiohttp warns when it is collected.)
        """
        store = AsyncDynamoDBEventStore(events_table)
        asyncio.run(store.stream_version(fresh_id(), "Note"))
        began = time.perf_counter()
        with pytest.raises(EventStoreError, match="another event loop"):
            asyncio.run(store.stream_version(fresh_id(), "Note"))
        assert time.perf_counter() - began < 1
        assert asyncio.run(_fresh_use(events_table)) == 0  # one store per loop works
        del store
        gc.collect()  # the abandoned client's warnings, here rather than in a later test

    def test_load_checks_its_input_before_any_request(self, new_table: Callable[..., EventStoreSettings]) -> None:
        """On a missing table that may not be created: an empty range is [], a bad one InvalidStreamError."""
        settings = new_table(create_table_if_not_exists=False)

        async def scenario() -> list[object]:
            async with AsyncDynamoDBEventStore(settings) as store:
                return await store.load("a", "Note", from_version=5, to_version=2)

        assert asyncio.run(scenario()) == []
        with pytest.raises(InvalidStreamError):
            asyncio.run(AsyncDynamoDBEventStore(settings).load("a", "Note", to_version=-1))
        assert DynamoDBEventStore(settings).load("a", "Note", from_version=5, to_version=2) == []
        with pytest.raises(InvalidStreamError):
            DynamoDBEventStore(settings).load("a", "Note", to_version=-1)


async def _fresh_use(settings: EventStoreSettings) -> int:
    async with AsyncDynamoDBEventStore(settings) as store:
        return await store.stream_version(fresh_id(), "Note")
