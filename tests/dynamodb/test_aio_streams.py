"""AsyncSubscription on DynamoDB Local's stream: what only the async one has, and faults at the HTTP boundary.

Its delivery rules are the sync subscription's flows; tests/dynamodb/test_streams.py runs the
delivery cases on both.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from dynamo_es import EventStoreSettings, Repository
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore, AsyncSubscription
from dynamo_es.exceptions import SubscriptionError
from dynamo_es.testing import DynamoDBLocal, FaultProxy

from .conftest import Wallet, ours

pytestmark = pytest.mark.ddblocal


def settings_of(streams_table: EventStoreSettings, **options: Any) -> EventStoreSettings:
    return attrs.evolve(streams_table, streams_poll_interval_ms=50, **options)


async def drain(subscription: AsyncSubscription) -> list[Any]:
    return [change async for batch in subscription.batches(stop_when_idle=True) for change in batch]


class TestAsyncSubscription:
    def test_async_for_delivers_each_aggregate_in_order_and_stop_ends_it(
        self, streams_table: EventStoreSettings, make_wallets: Callable[..., list[str]]
    ) -> None:
        """``async for change in subscription`` yields each wallet's versions in order; stop() ends the loop."""
        ids = make_wallets(2, deposits=2)

        async def scenario() -> list[Any]:
            async with AsyncDynamoDBEventStore(settings_of(streams_table)) as store:
                received: list[Any] = []
                async with await store.subscribe_to_changes() as subscription:
                    async for change in subscription:
                        received.append(change)
                        if len(ours(received, ids)) == 6:
                            subscription.stop()
                return ours(received, ids)

        changes = asyncio.run(asyncio.wait_for(scenario(), 30))
        for wallet_id in ids:
            assert [c.event.version for c in changes if c.event.aggregate_id == wallet_id] == [1, 2, 3]

    def test_stop_cuts_an_idle_wait_short(self, streams_table: EventStoreSettings) -> None:
        """With a 60 s poll interval, stop() ends a subscription waiting on an idle stream at once."""

        async def read_until_stopped(subscription: AsyncSubscription) -> list[Any]:
            return [change async for batch in subscription.batches() for change in batch]

        async def scenario() -> float:
            async with AsyncDynamoDBEventStore(attrs.evolve(streams_table, streams_poll_interval_ms=60_000)) as store:
                subscription = await store.subscribe_to_changes(start_at="latest")
                reading = asyncio.create_task(read_until_stopped(subscription))
                await asyncio.sleep(0.5)  # past the first (empty) read: now in its 60 s wait
                assert not reading.done()
                began = time.monotonic()
                subscription.stop()
                await asyncio.wait_for(reading, 10)
                await subscription.close()
                return time.monotonic() - began

        assert asyncio.run(scenario()) < 1

    @pytest.mark.timing
    def test_the_loop_runs_other_tasks_while_the_stream_is_read(
        self, streams_table: EventStoreSettings, make_wallets: Callable[..., list[str]]
    ) -> None:
        """A task ticking every 5 ms keeps ticking while 300 changes are read and decoded."""
        ids = make_wallets(60, deposits=4)
        ticks: list[float] = []

        async def ticker(done: asyncio.Event) -> None:
            while not done.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        async def scenario() -> list[Any]:
            done = asyncio.Event()
            async with AsyncDynamoDBEventStore(settings_of(streams_table)) as store:
                subscription = await store.subscribe_to_changes()
                await subscription.start()  # the client opens and the shards are listed before timing
                ticking = asyncio.create_task(ticker(done))
                changes = await drain(subscription)
                done.set()
                await ticking
                await subscription.close()
                return changes

        changes = asyncio.run(scenario())
        assert len(ours(changes, ids)) == 300
        assert len(ticks) > 3
        assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.1  # measured: 17-25 ms, load 1.0

    def test_a_table_without_stream_is_a_clear_error(self, new_table: Callable[..., EventStoreSettings]) -> None:
        """subscribe_to_changes() on a table with streams off raises SubscriptionError."""

        async def scenario() -> None:
            async with AsyncDynamoDBEventStore(new_table(enable_streams=False)) as store:
                await store.subscribe_to_changes()

        with pytest.raises(SubscriptionError, match="no stream"):
            asyncio.run(scenario())


class TestFaultsAtTheBoundary:
    """Errors AWS returns and DynamoDB Local does not, answered by a proxy in front of it."""

    def test_an_expired_iterator_is_renewed_without_loss_or_duplicates(
        self, streams_table: EventStoreSettings, dynamodb_local: DynamoDBLocal, wallets: Repository[Wallet]
    ) -> None:
        """ExpiredIteratorException (an iterator older than 15 minutes on AWS): renewed after the last record read."""
        with FaultProxy(dynamodb_local.endpoint_url) as proxy:
            settings = settings_of(streams_table, endpoint_url=proxy.endpoint_url)
            first, later = save_wallet(wallets), None

            async def scenario() -> tuple[list[Any], list[Any]]:
                nonlocal later
                async with AsyncDynamoDBEventStore(settings) as store:
                    subscription = await store.subscribe_to_changes()
                    seen = await drain(subscription)
                    later = save_wallet(wallets)
                    proxy.inject("GetRecords", "error", code="ExpiredIteratorException")
                    more = await drain(subscription)
                    await subscription.close()
                    return seen, more

            seen, more = asyncio.run(scenario())
        assert ("GetRecords", "error") in proxy.seen
        assert [c.event.version for c in ours(seen, [first])] == [1]
        assert ours(more, [first]) == [] and [c.event.version for c in ours(more, [later])] == [1]

    def test_throttling_backs_off_then_recovers(
        self, streams_table: EventStoreSettings, dynamodb_local: DynamoDBLocal, wallets: Repository[Wallet]
    ) -> None:
        """LimitExceededException on every attempt of one read: the subscription backs off and reads it later."""
        with FaultProxy(dynamodb_local.endpoint_url) as proxy:
            settings = settings_of(streams_table, endpoint_url=proxy.endpoint_url)

            async def scenario() -> tuple[str, list[Any]]:
                async with AsyncDynamoDBEventStore(settings) as store:
                    subscription = await store.subscribe_to_changes(start_at="latest")
                    await subscription.start()
                    wallet_id = save_wallet(wallets)
                    proxy.inject("GetRecords", "error", code="LimitExceededException", times=3)
                    changes = await drain(subscription)
                    await subscription.close()
                    return wallet_id, changes

            wallet_id, changes = asyncio.run(scenario())
        assert [fault for op, fault in proxy.seen if op == "GetRecords"].count("error") == 3
        assert [c.event.version for c in ours(changes, [wallet_id])] == [1]


def save_wallet(wallets: Repository[Wallet]) -> str:
    """A new wallet, saved (one event)."""
    wallet = Wallet.open(f"w-{uuid.uuid4()}")
    wallets.save(wallet)
    return wallet.id
