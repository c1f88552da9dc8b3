"""The outbox on both stores: the sparse index, marking, and the dispatcher's guarantees."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from dynamo_es import (
    DispatchReport,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryEventStore,
    OutboxDispatcher,
    OutboxStore,
    StoredEvent,
    event,
)
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncOutboxDispatcher, AsyncOutboxStore
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.testing._aio_contract import Blocking, LoopThread


@event(name="OutboxTestHappened")
@attrs.frozen
class Happened:
    n: int


Store = DynamoDBEventStore | InMemoryEventStore


@pytest.fixture(params=["memory", "dynamodb", "async-memory", "async-dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A store with an empty outbox (a table of its own for DynamoDB); the async ones awaited on a loop thread."""
    kind = request.param.removeprefix("async-")
    if kind == "memory":
        sync: Store = InMemoryEventStore()
    else:
        request.applymarker(pytest.mark.ddblocal)
        new_table: Callable[..., EventStoreSettings] = request.getfixturevalue("new_table")
        settings = new_table(outbox_partitions=3)
        sync = DynamoDBEventStore(settings)
    if not request.param.startswith("async-"):
        yield sync
        return
    runner = LoopThread()
    target = (
        AsyncInMemoryEventStore(sync) if isinstance(sync, InMemoryEventStore) else AsyncDynamoDBEventStore(settings)
    )
    yield Blocking(target, runner)
    if isinstance(target, AsyncDynamoDBEventStore):
        runner.run(target.close())
    runner.stop()


def write(store: Store, aggregates: int, events: int) -> list[str]:
    """Interleaved appends: ``events`` events on each of ``aggregates`` new streams."""
    ids = [f"o-{uuid.uuid4()}" for _ in range(aggregates)]
    for version in range(events):
        for aggregate_id in ids:
            store.append(aggregate_id, "Order", [Happened(version)], version).raise_for_failure()
    return ids


@attrs.define
class Publisher:
    """Records what it published; fails as told."""

    fail: Callable[[StoredEvent], bool] = lambda _: False
    published: list[StoredEvent] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)

    def __call__(self, stored: StoredEvent) -> None:
        if self.fail(stored):
            raise ConnectionError(f"broker refused {stored.stream_id} v{stored.version}")
        with self.lock:
            self.published.append(stored)

    def versions_by_stream(self) -> dict[str, list[int]]:
        by_stream: dict[str, list[int]] = defaultdict(list)
        for stored in self.published:
            by_stream[stored.stream_id].append(stored.version)
        return dict(by_stream)


def dispatcher(store: Any, publisher: Publisher, **options: Any) -> Any:
    """A dispatcher for ``store``: the async one (behind the same facade) for an async store."""
    if isinstance(store, Blocking):
        return Blocking(AsyncOutboxDispatcher(store.target, publisher, base_delay=0.001, **options), store.runner)
    return OutboxDispatcher(store, publisher, base_delay=0.001, **options)


class TestOutboxStore:
    def test_new_events_are_undispatched_oldest_first(self, store: Any) -> None:
        """Every appended event is listed, in write order, until marked."""
        ids = write(store, 2, 3)
        listed = list(store.undispatched())
        assert [(e.aggregate_id, e.version) for e in listed] == [(i, v) for v in (1, 2, 3) for i in ids]
        assert not any(e.is_dispatched for e in listed)
        assert store.count_undispatched() == 6
        target = getattr(store, "target", store)
        assert isinstance(target, AsyncOutboxStore if isinstance(store, Blocking) else OutboxStore)

    def test_marking_removes_from_the_outbox_and_twice_is_harmless(self, store: Any) -> None:
        """mark_dispatched returns True once, then False; the event loads as dispatched."""
        (aggregate_id,) = write(store, 1, 2)
        assert store.mark_dispatched(aggregate_id, "Order", 1) is True
        assert store.mark_dispatched(aggregate_id, "Order", 1) is False
        assert [e.version for e in store.undispatched()] == [2]
        assert [e.is_dispatched for e in store.load(aggregate_id, "Order")] == [True, False]
        assert store.mark_dispatched(aggregate_id, "Order", 99) is False

    def test_pages_through_a_long_outbox(self, store: Any) -> None:
        """A small page size still yields every event, in order."""
        ids = write(store, 3, 10)
        listed = list(store.undispatched(page_size=4))
        assert len(listed) == 30 and {e.aggregate_id for e in listed} == set(ids)
        for aggregate_id in ids:
            assert [e.version for e in listed if e.aggregate_id == aggregate_id] == list(range(1, 11))


@pytest.mark.ddblocal
def test_outbox_queries_the_sparse_index_and_never_scans(new_table: Callable[..., EventStoreSettings]) -> None:
    """Listing undispatched events is a Query on the ``outbox`` index; dispatched items leave it."""
    store = DynamoDBEventStore(new_table())
    (aggregate_id,) = write(store, 1, 3)
    calls: list[str] = []
    for client in (store.client, store.connection.client):
        client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    store.mark_dispatched(aggregate_id, "Order", 1)
    assert [e.version for e in store.undispatched()] == [2, 3]
    assert "Scan" not in calls and "Query" in calls
    index = store.connection.client.query(
        TableName=store.settings.events_table_name,
        IndexName="outbox",
        KeyConditionExpression="outboxPending = :p",
        ExpressionAttributeValues={":p": {"S": "0"}},
    )
    assert sorted(int(item["version"]["N"]) for item in index["Items"]) == [2, 3]


class TestDispatcher:
    def test_publishes_everything_in_order_per_aggregate_and_marks_it(self, store: Any) -> None:
        """One pass publishes every event once, each aggregate in version order, then marks them."""
        ids = write(store, 4, 5)
        publisher = Publisher()
        report = dispatcher(store, publisher).dispatch_once()
        assert report == DispatchReport(published=20)
        assert publisher.versions_by_stream() == {f"Order:{i}": [1, 2, 3, 4, 5] for i in ids}
        assert store.count_undispatched() == 0

    def test_failing_publisher_leaves_the_event_and_its_successors_undispatched(self, store: Any) -> None:
        """A publish that keeps failing is retried, stays undispatched, and blocks only its aggregate."""
        broken, fine = write(store, 2, 3)
        attempts: list[int] = []

        def fail(stored: StoredEvent) -> bool:
            if (stored.aggregate_id, stored.version) == (broken, 2):
                attempts.append(1)
                return True
            return False

        publisher = Publisher(fail)
        report = dispatcher(store, publisher, max_attempts=3).dispatch_once()
        assert report == DispatchReport(published=4, failed=1, deferred=1)
        assert len(attempts) == 3
        assert publisher.versions_by_stream() == {f"Order:{broken}": [1], f"Order:{fine}": [1, 2, 3]}
        assert [(e.aggregate_id, e.version) for e in store.undispatched()] == [(broken, 2), (broken, 3)]
        healed = Publisher()
        dispatcher(store, healed).dispatch_once()
        assert healed.versions_by_stream() == {f"Order:{broken}": [2, 3]}
        assert store.count_undispatched() == 0

    def test_transient_failure_is_retried_and_published_once(self, store: Any) -> None:
        """A publisher that fails twice then succeeds publishes the event once."""
        write(store, 1, 1)
        failures = iter([True, True])
        publisher = Publisher(lambda _: next(failures, False))
        assert dispatcher(store, publisher, max_attempts=3).dispatch_once().published == 1
        assert len(publisher.published) == 1

    def test_two_dispatchers_at_once_miss_nothing(self, store: Any) -> None:
        """Two dispatchers racing: every event is published (at least once) and all end dispatched."""
        ids = write(store, 5, 8)
        publishers = [Publisher(), Publisher()]
        runners = [dispatcher(store, p) for p in publishers]
        threads = [threading.Thread(target=r.run, kwargs={"stop_when_idle": True}) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert store.count_undispatched() == 0
        published = {(e.aggregate_id, e.version) for p in publishers for e in p.published}
        assert published == {(i, v) for i in ids for v in range(1, 9)}
        for publisher in publishers:
            for versions in publisher.versions_by_stream().values():
                assert versions == sorted(versions)

    def test_run_stops_when_told(self, store: Any) -> None:
        """stop() from another thread ends run() promptly on an empty outbox."""
        runner = dispatcher(store, Publisher())
        thread = threading.Thread(target=runner.run, kwargs={"poll_interval": 0.05})
        thread.start()
        runner.stop()
        thread.join(timeout=5)
        assert not thread.is_alive()


class TestConcurrentDispatchers:
    def test_two_dispatchers_split_the_work_lose_nothing_and_keep_order(self, store: Any) -> None:
        """Two dispatchers at once over 500 events: none lost, under 1 % published twice, order kept per aggregate."""
        write(store, 50, 10)
        publisher = Publisher()
        workers = [dispatcher(store, publisher, lease_seconds=30) for _ in range(2)]
        threads = [
            threading.Thread(target=w.run, kwargs={"poll_interval": 0.01, "stop_when_idle": True}) for w in workers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        keys = [(e.stream_id, e.version) for e in publisher.published]
        assert len(set(keys)) == 500 and store.count_undispatched() == 0
        assert len(keys) - 500 < 5
        first_seen: dict[str, list[int]] = {}
        for stream_id, version in dict.fromkeys(keys):
            first_seen.setdefault(stream_id, []).append(version)
        assert all(versions == sorted(versions) for versions in first_seen.values())

    def test_a_crashed_dispatchers_claim_is_taken_over_when_its_lease_ends(self, store: Any) -> None:
        """A claim by a dispatcher that died holds others off only until its lease ends."""
        (aggregate_id,) = write(store, 1, 1)
        assert store.claim(aggregate_id, "Order", 1, owner="crashed", lease_seconds=0.3)
        publisher = Publisher()
        assert dispatcher(store, publisher).dispatch_once().claimed_elsewhere == 1
        time.sleep(0.4)
        assert dispatcher(store, publisher).dispatch_once().published == 1
        assert [e.version for e in publisher.published] == [1]

    def test_a_later_event_cannot_be_claimed_before_the_earlier_is_dispatched(self, store: Any) -> None:
        """Claims keep per-aggregate order: version 2 waits until version 1 is dispatched."""
        (aggregate_id,) = write(store, 1, 2)
        assert not store.claim(aggregate_id, "Order", 2, owner="a", lease_seconds=30)
        assert store.claim(aggregate_id, "Order", 1, owner="a", lease_seconds=30)
        assert not store.claim(aggregate_id, "Order", 1, owner="b", lease_seconds=30)
        store.mark_dispatched(aggregate_id, "Order", 1)
        assert store.claim(aggregate_id, "Order", 2, owner="b", lease_seconds=30)
