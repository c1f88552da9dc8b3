"""Rebuilding a read model from the events table on DynamoDB Local, while writers keep appending."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import defaultdict

import pytest

from dynamo_es import Change, DynamoDBCheckpointStore, DynamoDBEventStore, Repository
from dynamo_es.projections import RebuildProgress

from .conftest import MakeProjection, Wallet

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
        streams = {event.stream_id for page in store.scan(segments=2, page_size=500) for event in page}
        assert key not in streams and streams
