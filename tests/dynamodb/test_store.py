"""DynamoDBEventStore on DynamoDB Local: transactions, limits, error mapping, idempotent retries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from botocore.exceptions import ReadTimeoutError

from dynamo_es import DynamoDBEventStore, EventStoreError, EventStoreSettings, NewEvent, event
from dynamo_es.dynamodb import EventItemCodec
from dynamo_es.dynamodb.schema.limits import MAX_TRANSACTION_BYTES
from dynamo_es.exceptions import EventTooLargeError, TransientStoreError

pytestmark = pytest.mark.ddblocal

FOUR_MIB = 4 * 1024 * 1024


@event(name="StoreTestNoted")
@attrs.frozen
class Noted:
    text: str


def notes(count: int, size: int = 0) -> list[Noted]:
    return [Noted(f"{n:05d}" + "x" * size) for n in range(count)]


def stored_versions(store: DynamoDBEventStore, aggregate_id: str) -> list[int]:
    return [e.version for e in store.load(aggregate_id, "Note")]


class TestTransactions:
    def test_hundred_events_are_one_transaction(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """100 events on a new stream go in a single TransactWriteItems of 100 conditional Puts."""
        calls = watch(dynamodb_store, "TransactWriteItems")
        result = dynamodb_store.append(aggregate_id, "Note", notes(100), 0)
        assert result.success and result.new_version == 100
        assert [len(call["TransactItems"]) for call in calls.calls] == [100]
        assert all("ConditionExpression" in item["Put"] for item in calls.calls[0]["TransactItems"])

    def test_one_conflicting_item_cancels_all_hundred(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """When the 100th slot is taken, none of the 100 events is written."""
        squatter = dynamodb_store.serializer.encode(
            NewEvent(Noted("squatter")),
            aggregate_type="Note",
            aggregate_id=aggregate_id,
            version=100,
        )
        EventItemCodec(dynamodb_store.model).to_model(squatter).save()
        calls = watch(dynamodb_store, "TransactWriteItems")
        result = dynamodb_store.append(aggregate_id, "Note", notes(100), 0)
        assert [len(call["TransactItems"]) for call in calls.calls] == [100]
        assert result.conflict and not result.success and result.new_version == 0
        assert result.actual_version == 100
        assert stored_versions(dynamodb_store, aggregate_id) == [100]

    def test_250_events_are_three_transactions_in_order(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """250 events of a new stream: 100, then 99 and 51 each after a check of the version before; in order."""
        calls = watch(dynamodb_store, "TransactWriteItems")
        assert dynamodb_store.append(aggregate_id, "Note", notes(250), 0).new_version == 250
        assert [len(call["TransactItems"]) for call in calls.calls] == [100, 100, 52]
        assert ["ConditionCheck" in call["TransactItems"][0] for call in calls.calls] == [False, True, True]
        loaded = dynamodb_store.load(aggregate_id, "Note")
        assert [e.event for e in loaded] == notes(250)
        assert [e.version for e in loaded] == list(range(1, 251))

    def test_a_stream_this_store_wrote_is_checked_again(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """A version this store wrote may be deleted since, by another process: the next append checks it."""
        dynamodb_store.append(aggregate_id, "Note", notes(1), 0).raise_for_failure()
        calls = watch(dynamodb_store, "TransactWriteItems")
        dynamodb_store.append(aggregate_id, "Note", notes(3), 1).raise_for_failure()
        (only,) = calls.calls
        assert "ConditionCheck" in only["TransactItems"][0] and len(only["TransactItems"]) == 4
        assert stored_versions(dynamodb_store, aggregate_id) == [1, 2, 3, 4]

    def test_a_full_save_onto_a_stream_checks_inside_its_transactions(
        self, events_table: EventStoreSettings, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """100 events after version 1: 99 and a check of version 1, then 1 and a check of 100; no read first."""
        DynamoDBEventStore(events_table).append(aggregate_id, "Note", notes(1), 0).raise_for_failure()
        fresh = DynamoDBEventStore(events_table)
        calls, queries = watch(fresh, "TransactWriteItems"), watch(fresh, "Query")
        fresh.append(aggregate_id, "Note", notes(100), 1).raise_for_failure()
        assert [len(call["TransactItems"]) for call in calls.calls] == [100, 2]
        assert all("ConditionCheck" in call["TransactItems"][0] for call in calls.calls)
        assert queries.calls == []
        assert stored_versions(fresh, aggregate_id) == list(range(1, 102))

    def test_a_partial_save_onto_an_unknown_stream_checks_inside_the_transaction(
        self, events_table: EventStoreSettings, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """With a slot to spare, the check is a ConditionCheck in the same transaction: no extra round trip."""
        DynamoDBEventStore(events_table).append(aggregate_id, "Note", notes(1), 0).raise_for_failure()
        fresh = DynamoDBEventStore(events_table)
        calls, queries = watch(fresh, "TransactWriteItems"), watch(fresh, "Query")
        fresh.append(aggregate_id, "Note", notes(99), 1).raise_for_failure()
        (only,) = calls.calls
        assert "ConditionCheck" in only["TransactItems"][0] and len(only["TransactItems"]) == 100
        assert queries.calls == []

    @pytest.mark.parametrize("count", [5, 100])
    def test_an_expected_version_that_does_not_exist_is_a_conflict_and_writes_nothing(
        self, events_table: EventStoreSettings, aggregate_id: str, count: int
    ) -> None:
        """Appending after version 3 of a 1-event stream would open a gap: a conflict, nothing written."""
        DynamoDBEventStore(events_table).append(aggregate_id, "Note", notes(1), 0).raise_for_failure()
        fresh = DynamoDBEventStore(events_table)
        result = fresh.append(aggregate_id, "Note", notes(count), 3)
        assert result.conflict and result.actual_version == 1 and result.new_version == 3
        assert stored_versions(fresh, aggregate_id) == [1]

    def test_large_events_are_split_below_the_4mb_request_limit(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """100 events of ~42 KB (over 4 MiB together) are sent as two transactions, each under 4 MB."""
        calls = watch(dynamodb_store, "TransactWriteItems")
        events = notes(100, size=31_500)  # ~42,000 bytes of Base64 per item
        result = dynamodb_store.append(aggregate_id, "Note", events, 0)
        assert result.success and result.new_version == 100
        sizes = calls.payload_sizes
        assert len(sizes) == 2 and sum(sizes) > FOUR_MIB
        assert all(size <= MAX_TRANSACTION_BYTES for size in sizes)
        assert [e.event for e in dynamodb_store.load(aggregate_id, "Note")] == events

    def test_max_batch_size_caps_each_transaction(
        self, events_table: EventStoreSettings, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """With max_batch_size=10, 25 events take three transactions of 10, 10 and 5 events (the later two checked)."""
        store = DynamoDBEventStore(attrs.evolve(events_table, max_batch_size=10))
        calls = watch(store, "TransactWriteItems")
        store.append(aggregate_id, "Note", notes(25), 0).raise_for_failure()
        assert [len(call["TransactItems"]) for call in calls.calls] == [10, 11, 6]

    def test_oversize_event_writes_nothing(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """An item over 400 KB is refused before any request is sent."""
        calls = watch(dynamodb_store, "TransactWriteItems")
        with pytest.raises(EventTooLargeError) as caught:
            dynamodb_store.append(aggregate_id, "Note", [Noted("ok"), Noted("y" * 310_000)], 0)
        assert caught.value.size > caught.value.limit == 400 * 1024
        assert calls.calls == []
        assert dynamodb_store.stream_version(aggregate_id, "Note") == 0

    def test_largest_accepted_event_is_really_accepted_by_dynamodb(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str
    ) -> None:
        """An event just under the computed limit is stored: the size accounting is not too strict."""
        result = dynamodb_store.append(aggregate_id, "Note", [Noted("z" * 305_000)], 0)
        assert result.success


class TestTransientErrors:
    @pytest.fixture
    def store(self, events_table: EventStoreSettings) -> DynamoDBEventStore:
        return DynamoDBEventStore(attrs.evolve(events_table, retry_base_delay_ms=1, max_transient_retries=3))

    @pytest.mark.parametrize(
        ("code", "reasons"),
        [
            ("TransactionCanceledException", ["TransactionConflict", "None"]),
            ("TransactionCanceledException", ["ThrottlingError"]),
            ("ProvisionedThroughputExceededException", None),
            ("ThrottlingException", None),
            ("TransactionInProgressException", None),
        ],
    )
    def test_contention_is_retried_then_succeeds(
        self,
        store: DynamoDBEventStore,
        aggregate_id: str,
        inject: Callable[..., None],
        watch: Callable[..., Any],
        code: str,
        reasons: list[str] | None,
    ) -> None:
        """TransactionConflict and throttling are retried with the same token until they pass."""
        calls = watch(store, "TransactWriteItems")
        inject(store, "TransactWriteItems", code, reasons=reasons, times=2)
        result = store.append(aggregate_id, "Note", notes(2), 0)
        assert result.success and result.new_version == 2
        assert len(calls.calls) == 3
        assert len({call["ClientRequestToken"] for call in calls.calls}) == 1
        assert stored_versions(store, aggregate_id) == [1, 2]

    def test_contention_that_outlives_the_retries_is_a_clear_error(
        self, store: DynamoDBEventStore, aggregate_id: str, inject: Callable[..., None]
    ) -> None:
        """After max_transient_retries, the result carries a TransientStoreError; nothing is written."""
        inject(
            store,
            "TransactWriteItems",
            "TransactionCanceledException",
            reasons=["TransactionConflict"],
            times=10,
        )
        result = store.append(aggregate_id, "Note", notes(2), 0)
        assert not result.success and not result.conflict
        assert isinstance(result.error, TransientStoreError)
        assert result.error.attempts == 4 and result.error.reason == "TransactionConflict"
        assert result.error.__cause__ is not None
        with pytest.raises(TransientStoreError):
            result.raise_for_failure()
        assert store.stream_version(aggregate_id, "Note") == 0

    def test_other_errors_are_not_retried_and_are_wrapped(
        self,
        store: DynamoDBEventStore,
        aggregate_id: str,
        inject: Callable[..., None],
        watch: Callable[..., Any],
    ) -> None:
        """A non-transient error (AccessDenied) fails at once as an EventStoreError."""
        calls = watch(store, "TransactWriteItems")
        inject(store, "TransactWriteItems", "AccessDeniedException")
        result = store.append(aggregate_id, "Note", notes(1), 0)
        assert type(result.error) is EventStoreError and "AccessDeniedException" in str(result.error)
        assert len(calls.calls) == 1


class TestIdempotentRetry:
    def test_ambiguous_failure_is_retried_without_duplicates(
        self, events_table: EventStoreSettings, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """A timeout after DynamoDB wrote the transaction: the retry succeeds and writes nothing twice."""
        store = DynamoDBEventStore(attrs.evolve(events_table, retry_base_delay_ms=1))
        calls = watch(store, "TransactWriteItems")
        lost: list[bool] = []

        def lose_response(**_: Any) -> None:
            if not lost:
                lost.append(True)
                raise ReadTimeoutError(endpoint_url="http://injected")

        store.client.meta.events.register("after-call.dynamodb.TransactWriteItems", lose_response)
        try:
            result = store.append(aggregate_id, "Note", notes(3), 0)
        finally:
            store.client.meta.events.unregister("after-call.dynamodb.TransactWriteItems", lose_response)
        assert lost and result.success and result.new_version == 3
        assert len(calls.calls) == 2 and calls.calls[0]["ClientRequestToken"] == calls.calls[1]["ClientRequestToken"]
        assert stored_versions(store, aggregate_id) == [1, 2, 3]

    def test_a_later_retry_with_another_payload_is_recognised_by_event_ids(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str
    ) -> None:
        """Re-sending the same event ids with new metadata is success, not a conflict."""
        from dynamo_es import EventMetadata

        envelopes = [NewEvent(note) for note in notes(2)]
        dynamodb_store.append(aggregate_id, "Note", envelopes, 0).raise_for_failure()
        again = dynamodb_store.append(
            aggregate_id, "Note", envelopes, 0, metadata=EventMetadata(correlation_id="second try")
        )
        assert again.success and again.new_version == 2
        assert stored_versions(dynamodb_store, aggregate_id) == [1, 2]

    def test_request_token_is_derived_from_the_batch(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """The same envelopes produce the same ClientRequestToken; other events another one."""
        calls = watch(dynamodb_store, "TransactWriteItems")
        envelopes = [NewEvent(note) for note in notes(2)]
        dynamodb_store.append(aggregate_id, "Note", envelopes, 0)
        dynamodb_store.append(aggregate_id, "Note", envelopes, 0)
        tokens = [call["ClientRequestToken"] for call in calls.calls]
        assert tokens[0] == tokens[1] and len(tokens[0]) <= 36
        other = dynamodb_store.append(f"{aggregate_id}-b", "Note", notes(2), 0)
        assert other.success and calls.calls[-1]["ClientRequestToken"] != tokens[0]


class TestBoundary:
    def test_unreachable_endpoint_raises_event_store_error(self) -> None:
        """No botocore or PynamoDB exception escapes when DynamoDB cannot be reached."""
        settings = EventStoreSettings(
            endpoint_url="http://127.0.0.1:9", aws_access_key_id="x", aws_secret_access_key="x"
        )
        store = DynamoDBEventStore(settings)
        with pytest.raises(EventStoreError) as caught:
            store.load("a", "Note")
        assert caught.value.__cause__ is not None

    def test_missing_table_without_auto_create_is_a_clear_error(self, new_table: Callable[..., Any]) -> None:
        """With create_table_if_not_exists off, a missing table is reported by name."""
        settings = new_table(create_table_if_not_exists=False)
        with pytest.raises(EventStoreError, match=settings.events_table_name):
            DynamoDBEventStore(settings).append("a", "Note", notes(1), 0)

    def test_load_follows_pages_past_one_megabyte(
        self, dynamodb_store: DynamoDBEventStore, aggregate_id: str, watch: Callable[..., Any]
    ) -> None:
        """A stream of ~2.5 MB comes back whole, over several Query pages."""
        dynamodb_store.append(aggregate_id, "Note", notes(60, size=30_000), 0).raise_for_failure()
        queries = watch(dynamodb_store, "Query")
        loaded = dynamodb_store.load(aggregate_id, "Note")
        assert [e.version for e in loaded] == list(range(1, 61))
        assert len(queries.calls) >= 3
        assert all(call["ConsistentRead"] for call in queries.calls)


def queried_ranges(store: DynamoDBEventStore) -> list[tuple[int, int | None, bool]]:
    """Records each Query's version range (from its key condition values) and whether it was a resumed page."""
    seen: list[tuple[int, int | None, bool]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        values = params["ExpressionAttributeValues"]
        high = int(values[":last"]["N"]) if ":last" in values else None
        seen.append((int(values[":first"]["N"]), high, "ExclusiveStartKey" in params))

    store.client.meta.events.register("provide-client-params.dynamodb.Query", record)
    return seen


class TestLoads:
    def test_a_long_stream_is_read_as_version_ranges_at_once(self, dynamodb_store: DynamoDBEventStore) -> None:
        """After the first page, the rest is read as disjoint ranges, concurrently; every event once, in order."""
        store = attrs.evolve(dynamodb_store, page_items=40)
        store.append("long", "Note", notes(250), 0).raise_for_failure()
        seen = queried_ranges(store)
        loaded = store.load("long", "Note")
        assert [e.version for e in loaded] == list(range(1, 251))
        assert [e.event.text for e in loaded] == [f"{n:05d}" for n in range(250)]
        ranges = [(low, high) for low, high, resumed in seen if not resumed and high is not None and low > 1]
        assert (41, 80) in ranges and max(high for _, high in ranges) == 250  # ranges, not pages in a row

    def test_a_short_stream_is_one_query(self, dynamodb_store: DynamoDBEventStore) -> None:
        """A stream within one page costs one request, as before: no range planning, no last-version read."""
        dynamodb_store.append("short", "Note", notes(5), 0).raise_for_failure()
        seen = queried_ranges(dynamodb_store)
        assert len(dynamodb_store.load("short", "Note")) == 5
        assert len(seen) == 1

    def test_a_version_window_ends_where_asked(self, dynamodb_store: DynamoDBEventStore) -> None:
        """to_version bounds the ranges too."""
        store = attrs.evolve(dynamodb_store, page_items=30)
        store.append("window", "Note", notes(200), 0).raise_for_failure()
        assert [e.version for e in store.load("window", "Note", from_version=20, to_version=155)] == list(
            range(20, 156)
        )
