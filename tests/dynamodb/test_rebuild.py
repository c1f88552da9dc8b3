"""Rebuilding a read model from the events table on DynamoDB Local, while writers keep appending."""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable

import pytest

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    Projection,
    Repository,
)
from dynamo_es.aio import AsyncProjection
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.projections import RebuildProgress

from .conftest import Deposited, MakeProjection, Wallet

pytestmark = pytest.mark.ddblocal


class TestRebuild:
    def test_table_then_stream_with_concurrent_writers_loses_and_duplicates_nothing(
        self, make_projection: MakeProjection, store: DynamoDBEventStore, wallets: Repository[Wallet]
    ) -> None:
        """Every event of every wallet is applied exactly once, in version order, across the hand-over."""
        ids = [f"rb-{uuid.uuid4()}" for _ in range(8)]
        for wallet_id in ids:
            wallet = Wallet.open(wallet_id)
            wallet.deposit(1)
            wallets.save(wallet)
        seen: dict[str, list[int]] = defaultdict(list)

        def apply(change: Change) -> None:
            if change.event.aggregate_id in ids:
                seen[change.event.aggregate_id].append(change.event.version)

        started = threading.Event()

        def writer() -> None:
            started.wait(10)
            for _ in range(6):
                for wallet_id in ids:
                    wallet = wallets.get(wallet_id)
                    wallet.deposit(2)
                    wallets.save(wallet)

        reports: list[RebuildProgress] = []

        def progress(report: RebuildProgress) -> None:
            reports.append(report)
            started.set()  # writers start once the table read is under way

        thread = threading.Thread(target=writer)
        thread.start()
        checkpoints = DynamoDBCheckpointStore(store.settings)
        projection = make_projection(f"rebuild-{uuid.uuid4().hex[:8]}", apply, checkpoints, store)
        projection.rebuild(segments=3, on_progress=progress)
        thread.join()
        projection.run(stop_when_idle=True)  # the rest of the live stream, from the saved position
        assert {i: seen[i] for i in ids} == {i: list(range(1, 9)) for i in ids}
        assert reports[-1].done and reports[-1].read >= 16
        assert all(a.read <= b.read for a, b in itertools.pairwise(reports))

    def test_scan_skips_items_that_are_not_events(self, store: DynamoDBEventStore) -> None:
        """Another entity type in the table (single-table design) is not an event and not an error."""
        key = f"Customer:{uuid.uuid4()}"
        store.connection.client.put_item(
            TableName=store.settings.events_table_name, Item={"pk": {"S": key}, "sk": {"N": "0"}, "name": {"S": "A"}}
        )
        ours = store.append(f"w-{uuid.uuid4()}", "Wallet", [Deposited(1)], 0).raise_for_failure()
        streams = {event.stream_id for page in store.scan(segments=2, page_size=500) for event in page}
        assert key not in streams and ours.stream_id in streams


class TestRebuildWithoutFollowing:
    """A rebuild that does not follow the stream opens no subscription: a table without one is enough."""

    @pytest.fixture
    def settings(self, new_table: Callable[..., EventStoreSettings]) -> EventStoreSettings:
        settings = new_table(enable_streams=False)
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        store.append("w-1", "Wallet", [Deposited(1), Deposited(2)], 0).raise_for_failure()
        return settings

    def test_the_sync_runner_reads_a_table_without_a_stream(self, settings: EventStoreSettings) -> None:
        """rebuild(follow=False) applies the table's events; it does not need DynamoDB Streams."""
        seen: list[int] = []
        projection = Projection(
            "no-stream", lambda c: seen.append(c.event.version), InMemoryCheckpointStore(), DynamoDBEventStore(settings)
        )
        assert projection.rebuild(follow=False).done and seen == [1, 2]

    def test_the_async_runner_reads_a_table_without_a_stream(self, settings: EventStoreSettings) -> None:
        """The async rebuild(follow=False) does the same."""
        seen: list[int] = []

        async def rebuild() -> bool:
            async with AsyncDynamoDBEventStore(settings) as store:
                projection = AsyncProjection(
                    "no-stream", lambda c: seen.append(c.event.version), InMemoryCheckpointStore(), store
                )
                return (await projection.rebuild(follow=False)).done

        assert asyncio.run(rebuild()) and seen == [1, 2]
