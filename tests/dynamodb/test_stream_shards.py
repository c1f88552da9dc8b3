"""Shard lineage, scripted with botocore's Stubber: DynamoDB Local never reshards its stream."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from dynamo_es import EventSerializer, EventStoreSettings, NewEvent, StreamPosition
from dynamo_es.core.changes import SHARD_END
from dynamo_es.dynamodb import EventItemCodec, Subscription, event_model
from dynamo_es.dynamodb.flows.base import Sleep
from dynamo_es.dynamodb.flows.records import record_decoder
from dynamo_es.dynamodb.wire.client import LazyClient

from .conftest import Deposited

ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/Events/stream/2024-01-01T00:00:00.000"


def sid(name: str) -> str:
    """A shard id of the length botocore validates."""
    return f"shardId-00000001700000000-{name}".ljust(30, "0")


def seq(number: int) -> str:
    """A sequence number of the length botocore validates."""
    return f"{number:021d}"


def record(sequence: int, version: int = 1) -> dict[str, Any]:
    """A GetRecords record inserting a WalletDeposited event."""
    encoded = EventSerializer().encode(
        NewEvent(Deposited(sequence)), aggregate_type="Wallet", aggregate_id="w", version=version
    )
    image = {
        "pk": {"S": encoded.stream_id},
        "sk": {"N": str(version)},
        "eventId": {"S": encoded.event_id},
        "aggregateId": {"S": encoded.aggregate_id},
        "aggregateType": {"S": encoded.aggregate_type},
        "eventType": {"S": encoded.event_type},
        "version": {"N": str(version)},
        "timestamp": {"S": encoded.timestamp},
        "eventData": {"S": encoded.event_data},
        "metadata": {"S": encoded.metadata},
        "isDispatched": {"BOOL": False},
    }
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": seq(sequence),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def shard(shard_id: str, *, parent: str | None = None, end: str | None = None) -> dict[str, Any]:
    description: dict[str, Any] = {"ShardId": sid(shard_id), "SequenceNumberRange": {"StartingSequenceNumber": seq(1)}}
    if parent:
        description["ParentShardId"] = sid(parent)
    if end:
        description["SequenceNumberRange"]["EndingSequenceNumber"] = seq(int(end))
    return description


def describe(*shards: dict[str, Any], last: str | None = None) -> dict[str, Any]:
    description: dict[str, Any] = {"StreamArn": ARN, "StreamStatus": "ENABLED", "Shards": list(shards)}
    if last:
        description["LastEvaluatedShardId"] = sid(last)
    return {"StreamDescription": description}


def iterator_call(stubber: Stubber, shard_id: str, kind: str, iterator: str, sequence: str | None = None) -> None:
    expected = {"StreamArn": ARN, "ShardId": sid(shard_id), "ShardIteratorType": kind}
    if sequence:
        expected["SequenceNumber"] = seq(int(sequence))
    stubber.add_response("get_shard_iterator", {"ShardIterator": iterator}, expected)


def records_call(stubber: Stubber, iterator: str, records: list[dict[str, Any]], next_iterator: str | None) -> None:
    response: dict[str, Any] = {"Records": records}
    if next_iterator:
        response["NextShardIterator"] = next_iterator
    stubber.add_response("get_records", response, {"ShardIterator": iterator, "Limit": 1000})


@pytest.fixture
def client() -> LazyClient:
    """A subscription's lazy streams client; ``client.get()`` is the botocore client to stub."""
    settings = EventStoreSettings(endpoint_url="http://127.0.0.1:9", aws_access_key_id="x", aws_secret_access_key="x")
    return LazyClient(settings, "dynamodbstreams")


def subscription(client: LazyClient, position: StreamPosition | None = None, **options: Any) -> Subscription:
    return Subscription(
        client,
        ARN,
        record_decoder(EventSerializer(), EventItemCodec(event_model(EventStoreSettings()))),
        position or StreamPosition(),
        **options,
    )


class TestShardLineage:
    def test_parent_is_read_to_its_end_before_children_and_new_shards_are_found(self, client: LazyClient) -> None:
        """Paged DescribeStream, parent before child, and a shard that appears later is read."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("parent", end="200"), last="parent"))
            stubber.add_response("describe_stream", describe(shard("child", parent="parent")))
            iterator_call(stubber, "parent", "TRIM_HORIZON", "p1")
            records_call(stubber, "p1", [record(100), record(150, 2)], "p2")
            records_call(stubber, "p2", [record(200, 3)], None)  # parent closed and drained
            iterator_call(stubber, "child", "TRIM_HORIZON", "c1")
            records_call(stubber, "c1", [record(300, 4)], "c2")
            stubber.add_response(
                "describe_stream", describe(shard("parent", end="200"), shard("child", parent="parent"), shard("new"))
            )
            records_call(stubber, "c2", [], "c3")
            iterator_call(stubber, "new", "TRIM_HORIZON", "n1")
            records_call(stubber, "n1", [record(400, 5)], "n2")

            reader = subscription(client).start()
            first, second, third = reader.poll(), reader.poll(), reader.poll()
            stubber.assert_no_pending_responses()
        assert [c.sequence_number for c in first] == [seq(100), seq(150)]
        assert [c.sequence_number for c in second] == [seq(200), seq(300)]
        assert [(c.shard_id, c.sequence_number) for c in third] == [(sid("new"), seq(400))]

    def test_a_saved_shard_that_expired_counts_as_records_lost(self, client: LazyClient) -> None:
        """Resuming after a shard the stream no longer lists (older than 24 h): the loss is reported, not hidden."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("new")))
            iterator_call(stubber, "new", "TRIM_HORIZON", "n1")
            records_call(stubber, "n1", [record(5)], "n2")
            reader = subscription(client, StreamPosition({sid("old"): seq(3)})).start()
            assert [c.sequence_number for c in reader.poll()] == [seq(5)]
            stubber.assert_no_pending_responses()
        assert reader.records_lost == 1

    def test_a_shard_read_to_its_end_is_marked_and_never_counts_as_lost(self, client: LazyClient) -> None:
        """A drained shard is marked in the position; once it expires, resuming loses nothing."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("old", end="9")))
            iterator_call(stubber, "old", "TRIM_HORIZON", "o1")
            records_call(stubber, "o1", [record(9)], None)
            stubber.add_response("describe_stream", describe(shard("old", end="9")))  # re-listed once drained
            reader = subscription(client).start()
            reader.poll()
        assert reader.position.shards[sid("old")] == SHARD_END
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("new")))
            resumed = subscription(client, reader.position).start()
            stubber.assert_no_pending_responses()
        assert resumed.records_lost == 0

    def test_child_waits_while_parent_is_open(self, client: LazyClient) -> None:
        """A child shard is not read while its parent still has records to give."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("parent"), shard("child", parent="parent")))
            iterator_call(stubber, "parent", "TRIM_HORIZON", "p1")
            records_call(stubber, "p1", [record(1)], "p2")
            records_call(stubber, "p2", [], "p3")
            reader = subscription(client).start()
            assert [c.shard_id for c in reader.poll()] == [sid("parent")]
            assert reader.poll() == []
            stubber.assert_no_pending_responses()

    def test_resume_uses_after_sequence_number_and_reads_unknown_shards_from_the_start(
        self, client: LazyClient
    ) -> None:
        """A position resumes its shards after their sequence numbers; other shards from TRIM_HORIZON."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("known"), shard("other")))
            iterator_call(stubber, "known", "AFTER_SEQUENCE_NUMBER", "k1", sequence="150")
            records_call(stubber, "k1", [record(160)], "k2")
            iterator_call(stubber, "other", "TRIM_HORIZON", "o1")
            records_call(stubber, "o1", [], "o2")
            position = StreamPosition({sid("known"): seq(150)})
            reader = subscription(client, position, start_at="latest").start()
            assert [c.sequence_number for c in reader.poll()] == [seq(160)]
            stubber.assert_no_pending_responses()
        assert reader.position == position  # poll() alone delivers nothing

    def test_start_at_latest_skips_closed_shards(self, client: LazyClient) -> None:
        """Without a position, "latest" opens open shards at LATEST and ignores closed ones."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("old", end="9"), shard("open", parent="old")))
            iterator_call(stubber, "open", "LATEST", "l1")
            records_call(stubber, "l1", [record(10)], "l2")
            reader = subscription(client, start_at="latest").start()
            assert [c.shard_id for c in reader.poll()] == [sid("open")]
            stubber.assert_no_pending_responses()

    def test_batches_advance_the_position(self, client: LazyClient) -> None:
        """The position moves past every change handed out by batches()."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("s")))
            iterator_call(stubber, "s", "TRIM_HORIZON", "i1")
            records_call(stubber, "i1", [record(5), record(7, 2)], "i2")
            records_call(stubber, "i2", [], "i3")
            reader = subscription(client)
            assert [len(batch) for batch in reader.batches(stop_when_idle=True)] == [2]
        assert reader.position == StreamPosition({sid("s"): seq(7)})


class TestAPollCutShort:
    """An async poll cancelled midway (``asyncio.timeout`` around it) is a poll whose flow is abandoned."""

    def test_changes_read_by_an_abandoned_poll_are_returned_by_the_next(self, client: LazyClient) -> None:
        """Abandoned while decoding one shard after reading another: the next poll returns both, none twice."""
        with Stubber(client.get()) as stubber:
            stubber.add_response("describe_stream", describe(shard("a"), shard("b")))
            iterator_call(stubber, "a", "TRIM_HORIZON", "a1")
            records_call(stubber, "a1", [record(1)], "a2")
            iterator_call(stubber, "b", "TRIM_HORIZON", "b1")
            records_call(stubber, "b1", [record(1000 + n, n + 1) for n in range(300)], "b2")
            records_call(stubber, "a2", [], "a3")
            records_call(stubber, "b1", [record(1000 + n, n + 1) for n in range(300)], "b2")  # the same iterator again
            reader = subscription(client).start()
            flow = reader._poll_flow()
            step = next(flow)
            while not isinstance(step, Sleep):  # up to the first pause in decoding shard b (300 records)
                step = flow.send(getattr(client.get(), step.operation)(**step.params))
            flow.close()  # what cancelling the awaiting task does to the flow
            again = reader.poll()
            stubber.assert_no_pending_responses()
        assert [c.sequence_number for c in again] == [seq(1), *(seq(1000 + n) for n in range(300))]
