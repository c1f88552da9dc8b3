"""Subscriptions on DynamoDB Local's stream: order, resume, MODIFY, async, polling, failures."""

from __future__ import annotations

import asyncio
import itertools
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from dynamo_es import ChangeKind, DynamoDBEventStore, EventStoreSettings
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.exceptions import StreamTrimmedError, SubscriptionError
from dynamo_es.testing._aio_contract import Blocking, LoopThread

from .conftest import ours

pytestmark = pytest.mark.ddblocal


Subscribe = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def subscribe(request: pytest.FixtureRequest, store: DynamoDBEventStore) -> Iterator[Subscribe]:
    """``subscribe(**options)``: the store's Subscription, or an AsyncSubscription on the same table behind a facade."""
    if request.param == "sync":
        yield lambda **options: store.subscribe_to_changes(**options)
        return
    runner, opened = LoopThread(), []
    async_store = AsyncDynamoDBEventStore(store.settings)

    def subscribe(**options: Any) -> Any:
        subscription = runner.run(async_store.subscribe_to_changes(**options))
        opened.append(subscription)
        return Blocking(subscription, runner)

    yield subscribe
    for subscription in opened:
        runner.run(subscription.close())
    runner.run(async_store.close())
    runner.stop()


def read_all(subscribe: Subscribe, **options: Any) -> list[Any]:
    subscription = subscribe(**options)
    return [change for batch in subscription.batches(stop_when_idle=True) for change in batch]


def inject_error(
    client: Any, operation: str, code: str, *, times: int = 1, when: Callable[..., bool] | None = None
) -> None:
    """Make the next ``times`` calls of ``operation`` (matching ``when``) fail with ``code``."""
    left = [times]

    def respond(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if left[0] and (when is None or when(params)):
            left[0] -= 1
            return AWSResponse("http://injected", 400, {}, None), {"Error": {"Code": code, "Message": "injected"}}
        return None

    client.meta.events.register_last(f"before-call.dynamodbstreams.{operation}", respond)


class TestDelivery:
    def test_changes_arrive_in_version_order_per_aggregate(
        self, store: DynamoDBEventStore, subscribe: Subscribe, make_wallets: Callable[..., list[str]]
    ) -> None:
        """Interleaved saves of three wallets arrive as inserts, each wallet's versions in order."""
        ids = make_wallets(3, deposits=4)
        changes = ours(read_all(subscribe), ids)
        assert len(changes) == 3 * 5
        for wallet_id in ids:
            versions = [c.event.version for c in changes if c.event.aggregate_id == wallet_id]
            assert versions == [1, 2, 3, 4, 5]
        change = changes[-1]
        assert change.kind is ChangeKind.INSERT and change.previous is None
        assert change.shard_id and change.sequence_number.isdigit()
        assert change.approximate_creation_time.tzinfo is not None
        assert change.event.stream_id == f"Wallet:{change.event.aggregate_id}"

    def test_resume_from_position_delivers_only_what_follows(
        self, store: DynamoDBEventStore, subscribe: Subscribe, make_wallets: Callable[..., list[str]]
    ) -> None:
        """A subscription resumed at another's position sees only later records, none twice."""
        first_ids = make_wallets(1, deposits=2)
        subscription = subscribe()
        seen = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        assert len(ours(seen, first_ids)) == 3
        later_ids = make_wallets(2, deposits=1)
        resumed = read_all(subscribe, position=subscription.position)
        assert ours(resumed, first_ids) == []
        assert len(ours(resumed, later_ids)) == 4
        assert not {c.sequence_number for c in resumed} & {c.sequence_number for c in seen}

    def test_start_at_latest_skips_the_past(
        self, store: DynamoDBEventStore, subscribe: Subscribe, make_wallets: Callable[..., list[str]]
    ) -> None:
        """Without a position, start_at="latest" begins with records written after start()."""
        old = make_wallets(1, deposits=0)
        subscription = subscribe(start_at="latest").start()
        new = make_wallets(1, deposits=0)
        changes = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        assert ours(changes, old) == [] and len(ours(changes, new)) == 1

    def test_items_that_are_not_events_are_skipped_and_counted(
        self, store: DynamoDBEventStore, subscribe: Subscribe
    ) -> None:
        """Another entity type written to the table (single-table design) is skipped, not an error."""
        subscription = subscribe(start_at="latest").start()
        item = {"pk": {"S": f"Customer:{time.time_ns()}"}, "sk": {"N": "0"}, "name": {"S": "Ada"}}
        store.connection.client.put_item(TableName=store.settings.events_table_name, Item=item)
        changes = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        assert not [c for c in changes if c.event.stream_id == item["pk"]["S"]]
        assert subscription.foreign >= 1

    def test_modify_is_delivered_as_a_modification(
        self, store: DynamoDBEventStore, subscribe: Subscribe, make_wallets: Callable[..., list[str]]
    ) -> None:
        """Flipping isDispatched on an item arrives as MODIFY with the old and new image."""
        (wallet_id,) = make_wallets(1, deposits=0)
        subscription = subscribe()
        list(subscription.batches(stop_when_idle=True))
        store.connection.client.update_item(
            TableName=store.settings.events_table_name,
            Key={"pk": {"S": f"Wallet:{wallet_id}"}, "sk": {"N": "1"}},
            UpdateExpression="SET isDispatched = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )
        (change,) = ours([c for b in subscription.batches(stop_when_idle=True) for c in b], [wallet_id])
        assert change.kind is ChangeKind.MODIFY
        assert change.event.is_dispatched and change.previous is not None and not change.previous.is_dispatched
        assert change.event.version == 1

    def test_stop_from_another_thread_ends_iteration(
        self, store: DynamoDBEventStore, subscribe: Subscribe, make_wallets: Callable[..., list[str]]
    ) -> None:
        """stop() called elsewhere makes a blocked ``for change in subscription`` return."""
        subscription = subscribe(start_at="latest").start()
        received: list[Any] = []
        reader = threading.Thread(target=lambda: received.extend(subscription))
        reader.start()
        ids = make_wallets(1, deposits=1)
        deadline = time.monotonic() + 10
        while len(ours(received, ids)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        subscription.stop()
        reader.join(timeout=5)
        assert not reader.is_alive()
        assert [c.event.version for c in ours(received, ids)] == [1, 2]
        assert subscription.position.shards

    def test_table_without_stream_is_a_clear_error(self, new_table: Callable[..., EventStoreSettings]) -> None:
        """Subscribing to a table with streams off raises SubscriptionError."""
        with pytest.raises(SubscriptionError, match="no stream"):
            DynamoDBEventStore(new_table(enable_streams=False)).subscribe_to_changes()


class TestReadChangesInAThread:
    def test_async_iteration(self, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]]) -> None:
        """``async for`` over the sync subscription's read_changes() (reads in a worker thread) yields every change."""
        ids = make_wallets(2, deposits=1)

        async def collect() -> list[Any]:
            subscription = store.subscribe_to_changes()
            return [change async for change in subscription.read_changes(stop_when_idle=True)]

        changes = ours(asyncio.run(collect()), ids)
        assert sorted((c.event.aggregate_id, c.event.version) for c in changes) == sorted(
            (wallet_id, version) for wallet_id in ids for version in (1, 2)
        )


class TestPolling:
    def test_poll_interval_is_honoured_on_an_idle_stream(self, streams_table: EventStoreSettings) -> None:
        """With streams_poll_interval_ms=250, empty reads are about 250 ms apart, not a busy loop."""
        import attrs

        store = DynamoDBEventStore(attrs.evolve(streams_table, streams_poll_interval_ms=250))
        subscription = store.subscribe_to_changes(start_at="latest").start()
        calls: list[float] = []
        subscription.client.meta.events.register(
            "before-call.dynamodbstreams.GetRecords", lambda **_: calls.append(time.monotonic())
        )
        reader = threading.Thread(target=lambda: list(subscription))
        reader.start()
        time.sleep(1.6)
        subscription.stop()
        reader.join(timeout=5)
        cycles = [t for i, t in enumerate(calls) if i == 0 or t - calls[i - 1] > 0.1]  # one read per shard a cycle
        gaps = [b - a for a, b in itertools.pairwise(cycles)]
        assert 3 <= len(cycles) <= 8
        assert statistics.median(gaps) >= 0.24

    def test_throttling_backs_off_then_recovers(
        self, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A LimitExceededException on GetRecords is logged, retried later, and nothing is lost."""
        ids = make_wallets(1, deposits=1)
        subscription = store.subscribe_to_changes().start()
        inject_error(subscription.client, "GetRecords", "LimitExceededException")
        with caplog.at_level(logging.INFO, logger="dynamo_es.streams"):
            assert subscription.poll() == []  # the shard has records: only the throttle hid them
            changes = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        assert "throttled" in caplog.text
        assert [c.event.version for c in ours(changes, ids)] == [1, 2]


class TestIteratorFailures:
    def test_expired_iterator_is_renewed_without_loss_or_duplicates(
        self, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]]
    ) -> None:
        """ExpiredIteratorException mid-read: a new iterator after the last sequence number."""
        first = make_wallets(1, deposits=1)
        subscription = store.subscribe_to_changes()
        seen = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        later = make_wallets(1, deposits=1)
        inject_error(subscription.client, "GetRecords", "ExpiredIteratorException")
        renewed: list[dict[str, Any]] = []
        subscription.client.meta.events.register(
            "before-call.dynamodbstreams.GetShardIterator", lambda params, **_: renewed.append(params)
        )
        more = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        assert any(p["body"] and b"AFTER_SEQUENCE_NUMBER" in p["body"] for p in renewed)
        assert ours(more, first) == []
        assert [c.event.version for c in ours(more, later)] == [1, 2]
        assert len(ours(seen, first)) == 2

    def test_trimmed_records_restart_from_oldest_with_a_warning(
        self, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]], caplog: pytest.LogCaptureFixture
    ) -> None:
        """Default policy: TrimmedDataAccessException logs a warning and reads from TRIM_HORIZON."""
        ids = make_wallets(1, deposits=0)
        position = store.subscribe_to_changes()
        list(position.batches(stop_when_idle=True))
        subscription = store.subscribe_to_changes(position.position)
        inject_error(
            subscription.client,
            "GetShardIterator",
            "TrimmedDataAccessException",
            when=lambda params: b"AFTER_SEQUENCE_NUMBER" in params["body"],
        )
        with caplog.at_level(logging.WARNING, logger="dynamo_es.streams"):
            changes = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        assert "trimmed" in caplog.text and "lost" in caplog.text
        assert len(ours(changes, ids)) == 1  # re-read from the oldest kept record
        assert subscription.records_lost == 1  # what a Projection reads to catch up from the table

    def test_trimmed_records_raise_when_asked(
        self, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]]
    ) -> None:
        """on_trimmed="raise" turns trimmed data into StreamTrimmedError naming the shard."""
        make_wallets(1, deposits=0)
        position = store.subscribe_to_changes()
        list(position.batches(stop_when_idle=True))
        subscription = store.subscribe_to_changes(position.position, on_trimmed="raise")
        inject_error(
            subscription.client,
            "GetShardIterator",
            "TrimmedDataAccessException",
            when=lambda params: b"AFTER_SEQUENCE_NUMBER" in params["body"],
        )
        with pytest.raises(StreamTrimmedError) as caught:
            list(subscription.batches(stop_when_idle=True))
        assert caught.value.shard_id in position.position.shards
