"""Lambda at scale: every payload shape, partial batch responses and poison events, under simulated Lambda retries.

Payloads are built from records captured on DynamoDB Local and wrapped in the envelopes AWS
documents. DynamoDB Local cannot run Lambda; ``simulate_lambda`` stands for the event source
mapping: it delivers batches, and on a partial batch response starts again at the lowest
reported sequence number (ReportBatchItemFailures), as Lambda does.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from dynamo_es import (
    AggregateNotFoundError,
    Change,
    ChangeKind,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    Projection,
    Repository,
    UnitOfWork,
    process_manager,
)
from dynamo_es.domain.lifecycle import EXPIRED, StreamDeleted
from dynamo_es.dynamodb import lambda_handler, read_lambda_event
from dynamo_es.exceptions import SubscriptionError
from dynamo_es.ports.checkpoints import sequence_key

from .conftest import Deposited, Wallet, capture_records, kinesis_record, lambda_record

pytestmark = pytest.mark.ddblocal


@attrs.define
class Applied:
    """A read model recording versions per wallet; fails on chosen (wallet, version) a number of times."""

    seen: dict[str, list[int]] = attrs.field(factory=lambda: defaultdict(list))
    failures_left: dict[tuple[str, int], int] = attrs.field(factory=dict)

    def __call__(self, change: Change) -> None:
        key = (change.event.aggregate_id, change.event.version)
        if self.failures_left.get(key, 0) > 0:
            self.failures_left[key] -= 1
            raise RuntimeError(f"cannot apply {key}")
        self.seen[change.event.aggregate_id].append(change.event.version)


def simulate_lambda(
    handler: Callable[[Any, Any], dict[str, Any]], records: list[dict[str, Any]], *, batch_size: int
) -> int:
    """Deliver ``records`` like an event source mapping with ReportBatchItemFailures; return the invocations."""
    position = invocations = 0
    while position < len(records):
        batch = records[position : position + batch_size]
        response = handler({"Records": batch}, None)
        invocations += 1
        assert invocations < 100, "the shard never moved on"
        failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
        if not failed:
            position += len(batch)
            continue
        lowest = min(failed, key=sequence_key)
        position += [r["dynamodb"]["SequenceNumber"] for r in batch].index(lowest)
    return invocations


@pytest.fixture
def wallet_records(store: DynamoDBEventStore, wallets: Repository[Wallet]) -> tuple[list[str], list[dict[str, Any]]]:
    """Three wallets with four events each, captured from the stream and shaped as Lambda delivers them."""
    ids = [f"lam-{n}-{random.random():.6f}" for n in range(3)]

    def write() -> None:
        for wallet_id in ids:
            wallet = Wallet.open(wallet_id)
            for amount in (1, 2, 3):
                wallet.deposit(amount)
            wallets.save(wallet)

    return ids, [lambda_record(r) for r in capture_records(store, write)]


def projection(store: DynamoDBEventStore, model: Applied, **options: Any) -> Projection:
    return Projection("lambda", model, InMemoryCheckpointStore(), store, **options)


class TestPartialBatchResponses:
    def test_a_transient_failure_is_retried_from_the_failed_record(
        self, store: DynamoDBEventStore, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """Failing twice on one event: redelivery from it, later events of that wallet wait, all end once in order."""
        ids, records = wallet_records
        model = Applied(failures_left={(ids[0], 2): 2})
        invocations = simulate_lambda(lambda_handler(projection(store, model)), records, batch_size=5)
        assert invocations > len(records) / 5
        assert all(model.seen[i] == [1, 2, 3, 4] for i in ids)

    def test_other_aggregates_in_the_batch_are_applied(
        self, store: DynamoDBEventStore, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """One invocation: the failing wallet stops at the failure, the others are fully applied."""
        ids, records = wallet_records
        model = Applied(failures_left={(ids[0], 2): 1})
        response = lambda_handler(projection(store, model))({"Records": records}, None)
        failed_record = next(
            r
            for r in records
            if r["dynamodb"]["NewImage"]["aggregateId"]["S"] == ids[0] and r["dynamodb"]["Keys"]["sk"]["N"] == "2"
        )
        assert response == {"batchItemFailures": [{"itemIdentifier": failed_record["dynamodb"]["SequenceNumber"]}]}
        assert model.seen[ids[0]] == [1] and model.seen[ids[1]] == [1, 2, 3, 4] == model.seen[ids[2]]

    def test_a_poison_event_is_parked_and_the_shard_moves_on(
        self, store: DynamoDBEventStore, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """An event that always fails is parked after max_attempts with its aggregate; replay after a fix."""
        ids, records = wallet_records
        model = Applied(failures_left={(ids[1], 3): 10**6})
        proj = projection(store, model, max_attempts=3)
        simulate_lambda(lambda_handler(proj), records, batch_size=4)
        assert model.seen[ids[1]] == [1, 2] and model.seen[ids[0]] == [1, 2, 3, 4] == model.seen[ids[2]]
        assert list(proj.parked()) == [f"Wallet:{ids[1]}"]
        model.failures_left.clear()
        proj.replay_parked()
        assert model.seen[ids[1]] == [1, 2, 3, 4]

    def test_reordered_records_with_a_failure_lose_nothing_under_lambda_retries(
        self, store: DynamoDBEventStore, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """Reordered delivery and a failing event together: Lambda's redelivery still brings every version."""
        ids, records = wallet_records
        shuffled = in_delivery_order(random.Random(11).sample(records, len(records)))
        model = Applied(failures_left={(ids[0], 2): 1, (ids[2], 3): 2})
        simulate_lambda(lambda_handler(projection(store, model)), shuffled, batch_size=6)
        assert all(model.seen[i] == [1, 2, 3, 4] for i in ids)

    def test_records_reordered_within_and_across_batches(
        self, store: DynamoDBEventStore, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """Records of one transaction may arrive in any order (Streams order per item only): still in order, once."""
        ids, records = wallet_records
        shuffled = random.Random(3).sample(records, len(records))
        model = Applied()
        handler = lambda_handler(projection(store, model))
        for start in range(0, len(shuffled), 5):
            assert handler({"Records": shuffled[start : start + 5]}, None) == {"batchItemFailures": []}
        assert all(model.seen[i] == [1, 2, 3, 4] for i in ids)


class TestPayloadShapes:
    def test_streams_pipes_and_kinesis_decode_to_the_same_events(
        self, wallet_records: tuple[list[str], list[dict[str, Any]]], store: DynamoDBEventStore
    ) -> None:
        """A Lambda Streams event, a Pipes array and Kinesis-for-DynamoDB records carry the same changes."""
        _, records = wallet_records
        raw = capture_records(store, lambda: None)  # nothing new: exercise an empty capture too
        assert raw == []
        via_streams = read_lambda_event({"Records": records}).changes
        via_pipes = read_lambda_event(records).changes
        kinesis = [kinesis_record(_as_getrecords(r), n) for n, r in enumerate(records)]
        via_kinesis = read_lambda_event({"Records": kinesis}).changes
        events = [(c.kind, c.event) for c in via_streams]
        assert events == [(c.kind, c.event) for c in via_pipes] == [(c.kind, c.event) for c in via_kinesis]
        assert via_kinesis[0].sequence_number == kinesis[0]["kinesis"]["sequenceNumber"]
        assert via_kinesis[0].shard_id == "shardId-000000000000"
        assert via_kinesis[0].approximate_creation_time == via_streams[0].approximate_creation_time

    def test_items_that_are_not_events_are_skipped_and_counted(self, store: DynamoDBEventStore) -> None:
        """A single-table design's other entity in the same table: skipped, counted, never an exception."""
        table = store.settings.events_table_name
        key = {"pk": {"S": f"Customer:{random.random()}"}, "sk": {"N": "0"}}
        records = capture_records(
            store, lambda: store.connection.client.put_item(TableName=table, Item={**key, "name": {"S": "Ada"}})
        )
        batch = read_lambda_event({"Records": [lambda_record(r) for r in records]})
        assert (batch.changes, batch.foreign) == ([], 1)

    def test_ttl_removals_are_marked_and_applied_as_a_deletion(
        self, store: DynamoDBEventStore, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """A REMOVE made by TTL (userIdentity dynamodb.amazonaws.com) is an expired change, applied as StreamDeleted."""
        ids, _ = wallet_records
        key = {"pk": {"S": f"Wallet:{ids[0]}"}, "sk": {"N": "1"}}
        table = store.settings.events_table_name
        (removal,) = capture_records(store, lambda: store.connection.client.delete_item(TableName=table, Key=key))
        removal["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        (change,) = read_lambda_event({"Records": [lambda_record(removal)]}).changes
        assert change.kind is ChangeKind.REMOVE and change.expired
        seen: list[Any] = []
        deletions = Projection("lambda", lambda c: seen.append(c.event.event), InMemoryCheckpointStore(), store)
        assert deletions.handle([change]).applied == 1
        assert seen == [StreamDeleted(1, EXPIRED)]

    def test_a_new_image_stream_skips_removals_it_cannot_decode(
        self, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """On a NEW_IMAGE stream a REMOVE (a TTL expiry, say) has no image: skipped and counted, not an error."""
        _, records = wallet_records
        removal = {**records[0], "eventName": "REMOVE"}
        body = {k: v for k, v in records[0]["dynamodb"].items() if k not in ("NewImage", "OldImage")}
        removal["dynamodb"] = {**body, "StreamViewType": "NEW_IMAGE"}
        batch = read_lambda_event({"Records": [removal, records[1]]})
        assert (len(batch.changes), batch.foreign) == (1, 1)

    def test_custom_key_names_are_read_with_the_projection_store_schema(
        self, new_table: Callable[..., EventStoreSettings]
    ) -> None:
        """A table with other key attribute names: the handler decodes with its projection's store settings."""
        settings = new_table(partition_key_attribute="PK", sort_key_attribute="SK", enable_streams=True)
        custom = DynamoDBEventStore(settings)
        wallets = Repository(Wallet, custom)
        records = capture_records(custom, lambda: wallets.save(Wallet.open("custom-keys")))
        model = Applied()
        response = lambda_handler(projection(custom, model))({"Records": [lambda_record(r) for r in records]}, None)
        assert response == {"batchItemFailures": []} and model.seen["custom-keys"] == [1]

    @pytest.mark.parametrize("view", ["KEYS_ONLY", "OLD_IMAGE"])
    def test_streams_without_the_new_image_name_the_view_needed(
        self, view: str, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """A KEYS_ONLY or OLD_IMAGE stream's insert cannot be projected; the error says which view is needed."""
        _, records = wallet_records
        record = records[0]
        record["dynamodb"]["StreamViewType"] = view
        del record["dynamodb"]["NewImage"]
        with pytest.raises(SubscriptionError, match=f"{view}.*NEW_AND_OLD_IMAGES"):
            read_lambda_event({"Records": [record]})

    @pytest.mark.parametrize(
        "payload",
        [{"body": "{}"}, {"Records": [{"eventSource": "aws:sqs"}]}, {"Records": [{"kinesis": {"data": "%%"}}]}, 42],
        ids=["sqs-message", "sqs-record", "bad-kinesis-data", "number"],
    )
    def test_foreign_payloads_are_named_errors(self, payload: Any) -> None:
        """Anything that is not a stream payload is a SubscriptionError, never a KeyError or TypeError."""
        with pytest.raises(SubscriptionError):
            read_lambda_event(payload)


def in_delivery_order(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records renumbered so that their sequence numbers follow the list, as a shard that wrote them so would."""
    base = min(int(r["dynamodb"]["SequenceNumber"]) for r in records)
    return [
        {**record, "dynamodb": {**record["dynamodb"], "SequenceNumber": f"{base + n:021d}"}}
        for n, record in enumerate(records)
    ]


def _as_getrecords(record: dict[str, Any]) -> dict[str, Any]:
    """Back from the Lambda shape to GetRecords' (a datetime creation time) for the Kinesis envelope."""
    body = dict(record["dynamodb"])
    body["ApproximateCreationDateTime"] = datetime.fromtimestamp(body["ApproximateCreationDateTime"], UTC)
    return {**record, "dynamodb": body}


class TestProcessManagerOnLambda:
    def test_redelivered_and_reordered_batches_have_one_effect_per_event(
        self, store: DynamoDBEventStore, wallet_records: tuple[list[str], list[dict[str, Any]]]
    ) -> None:
        """A process manager behind lambda_handler: the payload three times, once reversed; one effect per deposit."""
        ids, records = wallet_records

        def mirror(change: Change, unit: UnitOfWork) -> None:
            if isinstance(change.event.event, Deposited):
                target = f"mirror-{change.event.aggregate_id}"
                try:
                    wallet = unit.get(Wallet, target)
                except AggregateNotFoundError:
                    wallet = Wallet.open(target)
                    unit.add(wallet)
                wallet.deposit(change.event.event.amount)

        name = f"mirror-{random.random():.6f}"
        for payload in (records, records[::-1], records):
            response = lambda_handler(process_manager(name, mirror, store))({"Records": payload}, None)
            assert response == {"batchItemFailures": []}
        assert [Repository(Wallet, store).get(f"mirror-{i}").balance for i in ids] == [6, 6, 6]
        assert {store.stream_version(f"mirror-{i}", "Wallet") for i in ids} == {4}
