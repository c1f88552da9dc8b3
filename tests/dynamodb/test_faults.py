"""Network faults at the HTTP level, through FaultProxy in front of DynamoDB Local.

"drop" stands for a response lost after DynamoDB applied the request (a timeout, a dropped
connection); "reset" for a connection that breaks before the request arrives; "delay" for a slow
network. DynamoDB Local produces none of these by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    NewEvent,
    OutboxDispatcher,
    Repository,
    StoredEvent,
    StreamAppend,
    Tracking,
    UnitOfWork,
    event,
    process_manager,
)
from dynamo_es.exceptions import OutcomeUnknownError
from dynamo_es.testing import DynamoDBLocal, FaultProxy

from ..conftest import Account

pytestmark = pytest.mark.ddblocal


@event(name="FaultNoted")
@attrs.frozen
class Noted:
    n: int


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal) -> Iterator[FaultProxy]:
    with FaultProxy(dynamodb_local.endpoint_url) as running:
        yield running


def fault_settings(dynamodb_local: DynamoDBLocal, proxy: FaultProxy) -> EventStoreSettings:
    """A table of its own, reached through the proxy; fast retries, all of them the store's own.

    botocore's own attempts (standard mode, up to 20 s of backoff) would only slow the lost
    responses down: the store's retries and read-backs are what these tests show.
    """
    suffix = uuid.uuid4().hex[:8]
    return dynamodb_local.settings(
        endpoint_url=proxy.endpoint_url,
        events_table_name=f"faults-{suffix}",
        checkpoints_table_name=f"faults-cp-{suffix}",
        retry_base_delay_ms=1,
        max_transient_retries=3,
        client_max_attempts=1,
    )


@pytest.fixture
def settings(dynamodb_local: DynamoDBLocal, proxy: FaultProxy) -> EventStoreSettings:
    """See `fault_settings`."""
    return fault_settings(dynamodb_local, proxy)


@pytest.fixture
def store(settings: EventStoreSettings) -> DynamoDBEventStore:
    store = DynamoDBEventStore(settings)
    store.ensure_table()
    return store


def versions(store: DynamoDBEventStore, aggregate_id: str) -> list[int]:
    return [e.version for e in store.load(aggregate_id, "Note")]


class TestAppend:
    def test_every_response_lost_is_resolved_to_success(self, store: DynamoDBEventStore, proxy: FaultProxy) -> None:
        """Applied but never answered, again and again: the append reads its slots back and reports success."""
        proxy.inject("TransactWriteItems", "drop", times=50)
        result = store.append("a", "Note", [Noted(n) for n in range(3)], 0)
        proxy.clear()
        assert result.success and result.new_version == 3 and versions(store, "a") == [1, 2, 3]
        assert ("TransactWriteItems", "drop") in proxy.seen

    def test_a_multi_transaction_append_with_lost_responses_writes_each_once(
        self, store: DynamoDBEventStore, proxy: FaultProxy
    ) -> None:
        """250 events, every transaction's response lost: all written once, in order, reported as such."""
        proxy.inject("TransactWriteItems", "drop", times=200)
        result = store.append("b", "Note", [Noted(n) for n in range(250)], 0)
        proxy.clear()
        assert result.success and result.new_version == 250 and versions(store, "b") == list(range(1, 251))

    def test_resets_before_arrival_are_retried(self, store: DynamoDBEventStore, proxy: FaultProxy) -> None:
        """Connections broken before the request arrived: retried, written once."""
        proxy.inject("TransactWriteItems", "reset", times=2)
        envelopes = [NewEvent(Noted(1))]
        assert store.append("c", "Note", envelopes, 0).success
        assert versions(store, "c") == [1]

    def test_no_answer_at_all_is_an_unknown_outcome_and_the_same_append_can_be_retried(
        self, store: DynamoDBEventStore, proxy: FaultProxy
    ) -> None:
        """Every connection broken, slots empty: that proves nothing (it may still land), so the outcome is unknown."""
        envelopes = [NewEvent(Noted(n)) for n in range(2)]
        proxy.inject("TransactWriteItems", "reset", times=100)
        result = store.append("g", "Note", envelopes, 0)
        proxy.clear()
        assert result.outcome_unknown and isinstance(result.error, OutcomeUnknownError)
        assert store.append("g", "Note", envelopes, 0).success and versions(store, "g") == [1, 2]


class TestReads:
    def test_a_dropped_query_is_retried(self, store: DynamoDBEventStore, proxy: FaultProxy) -> None:
        """Lost Query responses do not fail the load."""
        store.append("d", "Note", [Noted(1), Noted(2)], 0).raise_for_failure()
        proxy.inject("Query", "drop", times=3)
        assert versions(store, "d") == [1, 2]

    def test_a_slow_network_only_slows_down(self, store: DynamoDBEventStore, proxy: FaultProxy) -> None:
        """A delayed Query still returns the events."""
        store.append("e", "Note", [Noted(1)], 0).raise_for_failure()
        proxy.inject("Query", "delay", seconds=0.3)
        assert versions(store, "e") == [1]


class TestOutboxAndCheckpoints:
    @pytest.fixture
    def settings(self, dynamodb_local: DynamoDBLocal, proxy: FaultProxy) -> EventStoreSettings:
        """As the module's, with botocore's own attempts: they are what retries a lost claim, mark or checkpoint."""
        return attrs.evolve(fault_settings(dynamodb_local, proxy), client_max_attempts=4)

    def test_the_outbox_survives_lost_claims_and_marks(self, store: DynamoDBEventStore, proxy: FaultProxy) -> None:
        """Lost claim and mark responses: every event is published, none is left undispatched."""
        store.append("f", "Note", [Noted(n) for n in range(3)], 0).raise_for_failure()
        published: list[StoredEvent] = []
        proxy.inject("TransactWriteItems", "drop", times=2)
        proxy.inject("UpdateItem", "drop", times=2)
        OutboxDispatcher(store, published.append, base_delay=0.001).run(poll_interval=0.01, stop_when_idle=True)
        assert sorted({e.version for e in published}) == [1, 2, 3] and store.count_undispatched() == 0
        assert {("TransactWriteItems", "drop"), ("UpdateItem", "drop")} <= set(proxy.seen)

    def test_checkpoints_survive_lost_responses(self, settings: EventStoreSettings, proxy: FaultProxy) -> None:
        """A lost checkpoint write is retried and the stored version is the newest."""
        checkpoints = DynamoDBCheckpointStore(settings)
        checkpoints.ensure_table()
        proxy.inject("UpdateItem", "drop", times=2)
        checkpoints.save_versions("p", {"Note:a": 5})
        assert checkpoints.load_progress("p", ["Note:a"])["Note:a"].version == 5
        assert ("UpdateItem", "drop") in proxy.seen


class TestCommit:
    def test_a_commit_whose_responses_are_lost_is_resolved_to_success(
        self, store: DynamoDBEventStore, proxy: FaultProxy
    ) -> None:
        """Applied but never answered: the commit reads one stream's slots back; both streams written once."""
        proxy.inject("TransactWriteItems", "drop", times=50)
        appends = [StreamAppend("m1", "Note", [Noted(1)], 0), StreamAppend("m2", "Note", [Noted(2), Noted(3)], 0)]
        result = store.append_many(appends, tracking=Tracking("pm", "Up:1", 1))
        proxy.clear()
        assert result.success and not result.already_processed
        assert versions(store, "m1") == [1] and versions(store, "m2") == [1, 2]
        assert store.tracked_version(Tracking("pm", "Up:1", 1)) == 1

    def test_a_tracking_only_commit_whose_response_is_lost_reads_the_tracking_back(
        self, store: DynamoDBEventStore, proxy: FaultProxy
    ) -> None:
        """With no events to read back, the tracking record tells that the commit landed."""
        proxy.inject("TransactWriteItems", "drop", times=50)
        result = store.append_many([], tracking=Tracking("pm", "Up:2", 3))
        proxy.clear()
        assert result.success and store.tracked_version(Tracking("pm", "Up:2", 3)) == 3

    def test_no_answer_at_all_is_an_unknown_outcome_and_the_commit_can_be_retried(
        self, store: DynamoDBEventStore, proxy: FaultProxy
    ) -> None:
        """Every connection broken: outcome unknown, nothing half-written; the same commit then succeeds once."""
        appends = [
            StreamAppend("m3", "Note", [NewEvent(Noted(1))], 0),
            StreamAppend("m4", "Note", [NewEvent(Noted(2))], 0),
        ]
        proxy.inject("TransactWriteItems", "reset", times=100)
        result = store.append_many(appends)
        proxy.clear()
        assert result.outcome_unknown and isinstance(result.error, OutcomeUnknownError) and not result.success
        assert versions(store, "m3") == versions(store, "m4") == []
        assert store.append_many(appends).success
        assert versions(store, "m3") == versions(store, "m4") == [1]

    def test_a_process_manager_whose_commit_never_arrives_acts_once_on_redelivery(
        self, store: DynamoDBEventStore, proxy: FaultProxy
    ) -> None:
        """A crash before the commit reaches DynamoDB: no effect, no tracking; the redelivery acts once."""

        def open_mirror(change: Change, unit: UnitOfWork) -> None:
            unit.add(Account.open(f"mirror-{change.event.aggregate_id}"))

        Repository(Account, store).save(Account.open("pm-source"))
        changes = [Change.stored(e) for e in store.load("pm-source", "TestAccount")]
        proxy.inject("TransactWriteItems", "reset", times=100)
        first = process_manager("mirrors", open_mirror, store).handle(changes)
        proxy.clear()
        assert first.failed and store.stream_version("mirror-pm-source", "TestAccount") == 0
        assert store.tracked_version(Tracking("mirrors", "TestAccount:pm-source", 1)) == 0
        again = process_manager("mirrors", open_mirror, store).handle(changes)
        assert again.applied == 1 and store.stream_version("mirror-pm-source", "TestAccount") == 1
        assert process_manager("mirrors", open_mirror, store).handle(changes).applied == 0
