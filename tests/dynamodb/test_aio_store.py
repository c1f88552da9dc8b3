"""The async DynamoDB store on DynamoDB Local: racing tasks, cancellation, and a loop that is never blocked."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

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


async def landed(store: AsyncDynamoDBEventStore, stream: str, *, within: float = 10.0) -> int:
    """The stream's version once the held transaction has landed (polled: a busy machine forwards it later)."""
    deadline = asyncio.get_running_loop().time() + within
    version = await store.stream_version(stream, "Note")
    while version == 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        version = await store.stream_version(stream, "Note")
    return version


async def held(proxy: FaultProxy, operation: str, *, within: float = 10.0) -> None:
    """Return once the proxy has received ``operation`` (and holds it), polled: a busy machine sends it later."""
    deadline = asyncio.get_running_loop().time() + within
    while (operation, "delay") not in proxy.seen and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


class TestCancellation:
    @pytest.fixture
    def slow(
        self, dynamodb_local: DynamoDBLocal, events_table: EventStoreSettings
    ) -> Iterator[tuple[FaultProxy, EventStoreSettings]]:
        with FaultProxy(dynamodb_local.endpoint_url) as proxy:
            yield proxy, attrs.evolve(events_table, endpoint_url=proxy.endpoint_url)

    def test_cancelled_on_the_wire_the_transaction_lands_whole_and_the_retry_is_safe(
        self, slow: tuple[FaultProxy, EventStoreSettings]
    ) -> None:
        """Cancelled while its transaction is on the wire: DynamoDB still runs it, whole; the retry changes nothing.

        The proxy holds the request, then forwards it although the client has gone, as DynamoDB
        executes a request it has received whatever becomes of the connection.
        """
        proxy, settings = slow
        stream = fresh_id()
        envelopes = [NewEvent(Noted(n)) for n in range(50)]

        async def scenario() -> tuple[int, int, list[str]]:
            async with AsyncDynamoDBEventStore(settings) as store:
                await store.ensure_table()
                proxy.inject("TransactWriteItems", "delay", seconds=0.4)
                task = asyncio.create_task(store.append(stream, "Note", envelopes, 0))
                await held(proxy, "TransactWriteItems")  # on the wire: the proxy holds it
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                after_cancel = await landed(store, stream)  # the held request is forwarded and runs
                retried = await store.append(stream, "Note", envelopes, 0)
                stored = [e.event_id for e in await store.load(stream, "Note")]
                return after_cancel, retried.new_version if retried.success else -1, stored

        after_cancel, new_version, stored = asyncio.run(scenario())
        assert ("TransactWriteItems", "delay") in proxy.seen
        assert after_cancel == 50
        assert new_version == 50 and stored == [e.event_id for e in envelopes]

    def test_cancelled_before_the_wire_nothing_is_written_and_the_retry_writes_once(
        self, events_table: EventStoreSettings
    ) -> None:
        """Cancelled while the store still checks its table: nothing was sent or stored; the retry writes all."""
        stream = fresh_id()
        envelopes = [NewEvent(Noted(n)) for n in range(50)]

        async def scenario() -> tuple[int, int, list[str]]:
            async with AsyncDynamoDBEventStore(events_table) as store:
                task = asyncio.create_task(store.append(stream, "Note", envelopes, 0))
                await asyncio.sleep(0)  # the append runs up to its first wait: the table check, in a thread
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                after_cancel = await store.stream_version(stream, "Note")
                retried = await store.append(stream, "Note", envelopes, 0)
                stored = [e.event_id for e in await store.load(stream, "Note")]
                return after_cancel, retried.new_version if retried.success else -1, stored

        after_cancel, new_version, stored = asyncio.run(scenario())
        assert after_cancel == 0
        assert new_version == 50 and stored == [e.event_id for e in envelopes]


class TestEventLoop:
    @pytest.mark.timing
    def test_a_10000_event_load_never_blocks_the_loop_for_a_round_trip(
        self, new_table: Callable[..., EventStoreSettings]
    ) -> None:
        """A 1 ms ticker keeps ticking during a 10,000-event load; its longest stall is shorter than a round trip.

        The round trips are the load's own Query requests (send, wait, parse), timed at the client;
        the stalls are what the loop cannot run other tasks for: a page's JSON parse and a slice
        of decoding. No gc.freeze: the load pauses the collector. Measured (bench_loop.py): longest pause 22-24 ms.
        """
        events_table = new_table()  # no stream: 10,000 writes stay fast on DynamoDB Local
        stream = fresh_id()
        DynamoDBEventStore(events_table).append(
            stream, "Note", [Noted(n) for n in range(10_000)], 0
        ).raise_for_failure()

        async def scenario() -> tuple[float, list[float], int]:
            async with AsyncDynamoDBEventStore(events_table) as store:
                await store.load(stream, "Note", to_version=10)
                trips = time_queries(await store._client.get())
                stalls: list[float] = []
                loading = True

                async def ticker() -> None:
                    last = time.perf_counter()
                    while loading:
                        await asyncio.sleep(0.001)
                        now = time.perf_counter()
                        stalls.append(now - last)
                        last = now

                # No gc.freeze: the load pauses the collector itself, so the heap of every test module
                # this process holds is not walked while it runs.
                ticking = asyncio.create_task(ticker())
                events = await store.load(stream, "Note")
                loading = False
                await ticking
                return max(stalls), trips, len(events)

        longest_stall, trips, loaded = asyncio.run(scenario())
        assert loaded == 10_000 and len(trips) >= 10
        assert longest_stall < statistics.median(trips), (longest_stall, sorted(trips))


def time_queries(client: Any) -> list[float]:
    """Time each Query of ``client`` from the call to its parsed response (a list that fills as they run)."""
    trips: list[float] = []
    query = client.query

    async def timed(**params: Any) -> Any:
        began = time.perf_counter()
        try:
            return await query(**params)
        finally:
            trips.append(time.perf_counter() - began)

    client.query = timed
    return trips


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
