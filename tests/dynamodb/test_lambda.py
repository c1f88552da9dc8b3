"""The Lambda adapter decodes DynamoDB-stream Lambda events into the same Change objects."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from dynamo_es import ChangeKind, DynamoDBEventStore, InMemoryCheckpointStore, InMemoryEventStore, Projection
from dynamo_es.dynamodb import changes_from_lambda_event
from dynamo_es.exceptions import SubscriptionError, UnknownEventTypeError

from .conftest import Deposited

SOURCE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/StreamEvents/stream/2024-05-01T10:00:00.000"


def as_lambda_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What Lambda hands a function for these GetRecords records, through JSON as on the wire."""
    lambda_records = []
    for record in records:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        lambda_records.append(
            {
                "eventID": record["eventID"],
                "eventName": record["eventName"],
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-west-1",
                "dynamodb": dynamodb,
                "eventSourceARN": SOURCE_ARN,
            }
        )
    return json.loads(json.dumps({"Records": lambda_records}))


@pytest.mark.ddblocal
class TestFromRealStreamRecords:
    def test_lambda_changes_equal_subscription_changes(
        self, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]]
    ) -> None:
        """Records read from DynamoDB Local, reshaped as Lambda sends them, decode to equal changes."""
        ids = make_wallets(1, deposits=2)
        subscription = store.subscribe_to_changes()
        changes = [c for batch in subscription.batches(stop_when_idle=True) for c in batch]
        ours = [c for c in changes if c.event.aggregate_id in ids]
        shard_id = ours[0].shard_id
        iterator = subscription.client.get_shard_iterator(
            StreamArn=subscription.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        raw: list[dict[str, Any]] = []
        while iterator and len(raw) < 100_000:
            page = subscription.client.get_records(ShardIterator=iterator, Limit=1000)
            raw.extend(page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
        wanted = {c.sequence_number for c in ours}
        decoded = changes_from_lambda_event(
            as_lambda_event([r for r in raw if r["dynamodb"]["SequenceNumber"] in wanted])
        )
        assert [(c.kind, c.event, c.sequence_number) for c in decoded] == [
            (c.kind, c.event, c.sequence_number) for c in ours
        ]
        assert all(c.shard_id is None for c in decoded)
        assert [c.approximate_creation_time for c in decoded] == [c.approximate_creation_time for c in ours]


def image(version: int, amount: int, *, dispatched: bool) -> dict[str, Any]:
    from dynamo_es import EventSerializer, NewEvent

    encoded = EventSerializer().encode(
        NewEvent(Deposited(amount)), aggregate_type="Wallet", aggregate_id="lambda-1", version=version
    )
    return {
        "pk": {"S": encoded.stream_id},
        "sk": {"N": str(version)},
        "eventId": {"S": encoded.event_id},
        "aggregateId": {"S": "lambda-1"},
        "aggregateType": {"S": "Wallet"},
        "eventType": {"S": encoded.event_type},
        "version": {"N": str(version)},
        "timestamp": {"S": encoded.timestamp},
        "eventData": {"S": encoded.event_data},
        "metadata": {"S": encoded.metadata},
        "isDispatched": {"BOOL": dispatched},
    }


def lambda_record(name: str, sequence: str, *, new: Any = None, old: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1714557600,
        "Keys": {"pk": {"S": "Wallet:lambda-1"}, "sk": {"N": "1"}},
        "SequenceNumber": sequence,
        "SizeBytes": 321,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        body["NewImage"] = new
    if old is not None:
        body["OldImage"] = old
    return {
        "eventID": f"id-{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": body,
        "eventSourceARN": SOURCE_ARN,
    }


class TestLambdaPayloads:
    def test_insert_modify_remove(self) -> None:
        """All three event names decode, with the right image and the creation time from epoch seconds."""
        first, flipped = image(1, 10, dispatched=False), image(1, 10, dispatched=True)
        event = {
            "Records": [
                lambda_record("INSERT", "111", new=first),
                lambda_record("MODIFY", "112", new=flipped, old=first),
                lambda_record("REMOVE", "113", old=flipped),
            ]
        }
        insert, modify, remove = changes_from_lambda_event(event)
        assert (insert.kind, insert.event.event, insert.event.version) == (ChangeKind.INSERT, Deposited(10), 1)
        assert modify.kind is ChangeKind.MODIFY and modify.event.is_dispatched and modify.previous is not None
        assert not modify.previous.is_dispatched
        assert remove.kind is ChangeKind.REMOVE and remove.event.event == Deposited(10)
        assert insert.approximate_creation_time.isoformat() == "2024-05-01T10:00:00+00:00"

    def test_projection_handles_lambda_batches_once(self) -> None:
        """The same projection handler runs on Lambda changes; a redelivered batch is skipped."""
        event = {"Records": [lambda_record("INSERT", "1", new=image(1, 5, dispatched=False))]}
        seen: list[int] = []
        projection = Projection(
            "lambda", lambda c: seen.append(c.event.version), InMemoryCheckpointStore(), InMemoryEventStore()
        )
        assert projection.handle(changes_from_lambda_event(event)).applied == 1
        assert projection.handle(changes_from_lambda_event(event)).applied == 0
        assert seen == [1]

    def test_not_a_stream_event(self) -> None:
        """A payload without Records, or from another source, is a SubscriptionError naming what arrived."""
        with pytest.raises(SubscriptionError, match="Records"):
            changes_from_lambda_event({"body": "{}"})
        with pytest.raises(SubscriptionError, match="record 0 of the payload is an SQS message"):
            changes_from_lambda_event({"Records": [{"eventSource": "aws:sqs", "eventID": "x"}]})

    def test_keys_only_stream_is_a_clear_error(self) -> None:
        """A record with no image (KEYS_ONLY stream) cannot be decoded and says why."""
        with pytest.raises(SubscriptionError, match="NEW_AND_OLD_IMAGES"):
            changes_from_lambda_event({"Records": [lambda_record("INSERT", "5")]})

    def test_unknown_type_names_the_event(self) -> None:
        """An image of an unregistered type decodes to a change carrying UnknownEventTypeError (never raised)."""
        unknown = image(1, 1, dispatched=False) | {"eventType": {"S": "NoSuchType"}}
        (change,) = changes_from_lambda_event({"Records": [lambda_record("INSERT", "6", new=unknown)]})
        assert isinstance(change.error, UnknownEventTypeError) and "NoSuchType" in str(change.error)
