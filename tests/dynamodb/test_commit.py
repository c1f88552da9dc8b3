"""Multi-stream commits on DynamoDB Local: one transaction on the wire, checks where they fit, contention retried."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from dynamo_es import DynamoDBEventStore, EventStoreSettings, NewEvent, StreamAppend, Tracking, event
from dynamo_es.exceptions import TransientStoreError

pytestmark = pytest.mark.ddblocal


@event(name="CommitNoted")
@attrs.frozen
class Noted:
    n: int


def notes(count: int) -> list[Noted]:
    return [Noted(n) for n in range(count)]


def ids() -> tuple[str, str, str]:
    return tuple(f"c-{uuid.uuid4().hex[:10]}" for _ in range(3))  # type: ignore[return-value]


@pytest.fixture
def store(events_table: EventStoreSettings) -> DynamoDBEventStore:
    return DynamoDBEventStore(attrs.evolve(events_table, retry_base_delay_ms=1, max_transient_retries=3))


class TestOneTransaction:
    def test_three_streams_and_a_tracking_record_are_one_transaction(
        self, store: DynamoDBEventStore, watch: Callable[..., Any]
    ) -> None:
        """Three streams' events and the tracking Update go in one TransactWriteItems call, tracking first."""
        a, b, c = ids()
        calls = watch(store, "TransactWriteItems")
        appends = [StreamAppend(a, "Note", notes(2), 0), StreamAppend(b, "Note", notes(1), 0)]
        result = store.append_many([*appends, StreamAppend(c, "Note", notes(3), 0)], tracking=Tracking("pm", "Up:x", 7))
        assert result.success
        (only,) = calls.calls
        kinds = [next(iter(item)) for item in only["TransactItems"]]
        assert kinds == ["Update"] + ["Put"] * 6
        assert only["TransactItems"][0]["Update"]["TableName"] == store.settings.checkpoints_table_name

    def test_unknown_expected_versions_are_checked_inside_while_there_is_room(
        self, events_table: EventStoreSettings, watch: Callable[..., Any]
    ) -> None:
        """A store that never saw the streams adds a ConditionCheck per stream, and reads none."""
        a, b, _ = ids()
        DynamoDBEventStore(events_table).append_many(
            [StreamAppend(a, "Note", notes(1), 0), StreamAppend(b, "Note", notes(2), 0)]
        )
        fresh = DynamoDBEventStore(events_table)
        calls, queries = watch(fresh, "TransactWriteItems"), watch(fresh, "Query")
        fresh.append_many(
            [StreamAppend(a, "Note", notes(1), 1), StreamAppend(b, "Note", notes(1), 2)]
        ).raise_for_failure()
        kinds = [next(iter(item)) for item in calls.calls[0]["TransactItems"]]
        assert kinds == ["ConditionCheck", "Put", "ConditionCheck", "Put"] and queries.calls == []

    def test_a_full_commit_reads_the_expected_versions_first_and_finds_a_missing_one(
        self, events_table: EventStoreSettings, watch: Callable[..., Any]
    ) -> None:
        """99 events and tracking fill the transaction: checks become reads; a missing version is a conflict."""
        a, b, _ = ids()
        DynamoDBEventStore(events_table).append(a, "Note", notes(1), 0).raise_for_failure()
        fresh = DynamoDBEventStore(events_table)
        calls = watch(fresh, "TransactWriteItems")
        appends = [StreamAppend(a, "Note", notes(50), 1), StreamAppend(b, "Note", notes(49), 3)]
        result = fresh.append_many(appends, tracking=Tracking("pm", "Up:y", 1))
        assert [(c.stream_id, c.expected_version, c.actual_version) for c in result.conflicts] == [(f"Note:{b}", 3, 0)]
        assert calls.calls == [] and fresh.stream_version(a, "Note") == 1
        appends[1] = StreamAppend(b, "Note", notes(49), 0)
        assert fresh.append_many(appends, tracking=Tracking("pm", "Up:y", 1)).success
        assert [len(call["TransactItems"]) for call in calls.calls] == [100]


class TestContention:
    def test_transaction_conflict_is_retried_with_the_same_token(
        self, store: DynamoDBEventStore, inject: Callable[..., None], watch: Callable[..., Any]
    ) -> None:
        """TransactionConflict (which DynamoDB Local never produces) is retried; one write in the end."""
        a, b, _ = ids()
        calls = watch(store, "TransactWriteItems")
        inject(
            store,
            "TransactWriteItems",
            "TransactionCanceledException",
            reasons=["None", "TransactionConflict"],
            times=2,
        )
        result = store.append_many([StreamAppend(a, "Note", notes(1), 0), StreamAppend(b, "Note", notes(1), 0)])
        assert result.success and len(calls.calls) == 3
        assert len({call["ClientRequestToken"] for call in calls.calls}) == 1
        assert store.stream_version(a, "Note") == store.stream_version(b, "Note") == 1

    def test_contention_that_outlives_the_retries_is_a_transient_error_and_writes_nothing(
        self, store: DynamoDBEventStore, inject: Callable[..., None]
    ) -> None:
        """After max_transient_retries the result carries a TransientStoreError naming the streams."""
        a, b, _ = ids()
        inject(store, "TransactWriteItems", "TransactionCanceledException", reasons=["TransactionConflict"], times=10)
        result = store.append_many([StreamAppend(a, "Note", notes(1), 0), StreamAppend(b, "Note", notes(1), 0)])
        assert not result.success and isinstance(result.error, TransientStoreError) and not result.outcome_unknown
        assert f"Note:{a}" in str(result.error) and f"Note:{b}" in str(result.error)
        assert store.stream_version(a, "Note") == store.stream_version(b, "Note") == 0


class TestFullCommits:
    def full(
        self, events_table: EventStoreSettings, stale_inside: bool
    ) -> tuple[DynamoDBEventStore, list[StreamAppend]]:
        """50 streams the store has never seen, 60 events: 40 checks fit inside, 10 are read first."""
        writer = DynamoDBEventStore(events_table)
        ids = [f"full-{uuid.uuid4().hex[:8]}" for _ in range(50)]
        for stream in ids:
            writer.append(stream, "Note", notes(1), 0).raise_for_failure()
        appends = [StreamAppend(stream, "Note", notes(2 if n < 10 else 1), 1) for n, stream in enumerate(ids)]
        appends[-1] = StreamAppend(ids[-1], "Note", notes(1), 3)  # checked before sending: missing
        if stale_inside:
            appends[0] = StreamAppend(ids[0], "Note", notes(2), 0)  # checked inside: the slot is taken
        return DynamoDBEventStore(events_table), appends

    def test_every_conflict_is_named_even_when_one_is_found_before_sending(
        self, events_table: EventStoreSettings
    ) -> None:
        """A stale stream checked inside and one read before: both named, as the memory store names them."""
        fresh, appends = self.full(events_table, stale_inside=True)
        result = fresh.append_many(appends)
        assert [(c.stream_id, c.expected_version, c.actual_version) for c in result.conflicts] == [
            (f"Note:{appends[0].aggregate_id}", 0, 1),
            (f"Note:{appends[-1].aggregate_id}", 3, 1),
        ]

    def test_a_redelivery_found_before_sending_is_already_processed(self, events_table: EventStoreSettings) -> None:
        """Tracking recorded already wins over a conflict found before sending, as in the memory store."""
        fresh, appends = self.full(events_table, stale_inside=False)
        tracking = Tracking("pm", f"Up:{uuid.uuid4().hex}", 2)
        assert fresh.append_many([], tracking=tracking).success
        assert fresh.append_many(appends, tracking=tracking).already_processed


class TestRetries:
    def test_the_same_commit_retried_after_its_token_expired_is_a_success(
        self, store: DynamoDBEventStore, watch: Callable[..., Any]
    ) -> None:
        """The slots hold this very commit: success, not a conflict (a new token: past the 10-minute window)."""
        a, b, _ = ids()
        appends = [StreamAppend(a, "Note", [NewEvent(Noted(1))], 0), StreamAppend(b, "Note", [NewEvent(Noted(2))], 0)]
        assert store.append_many(appends).success

        def new_token(params: dict[str, Any], **_: Any) -> None:
            params["ClientRequestToken"] = str(uuid.uuid4())

        store.client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", new_token)
        try:
            again = store.append_many(appends)
        finally:
            store.client.meta.events.unregister("provide-client-params.dynamodb.TransactWriteItems", new_token)
        assert again.success and not again.conflicts
        assert store.stream_version(a, "Note") == store.stream_version(b, "Note") == 1
