"""Every payload AWS may hand a Lambda function either decodes or raises a LambdaPayloadError naming what arrived."""

from __future__ import annotations

import base64
import json
from typing import Any

import attrs
import pytest

from dynamo_es import EventSerializer, NewEvent, StoredEvent, event
from dynamo_es.dynamodb import read_lambda_event
from dynamo_es.exceptions import LambdaPayloadError
from dynamo_es.testing import lambda_payload


@event(name="lambda-shape-tests.Pinged")
@attrs.frozen
class Pinged:
    n: int


def stored(version: int) -> StoredEvent:
    serializer = EventSerializer()
    encoded = serializer.encode(NewEvent(Pinged(version)), aggregate_type="Probe", aggregate_id="p-1", version=version)
    return serializer.decode(encoded)


EVENTS = [stored(1), stored(2)]


class TestSupportedShapes:
    @pytest.mark.parametrize("shape", ["streams", "pipes", "kinesis", "kinesis-unwrapped"])
    def test_each_shape_decodes_to_the_stored_events(self, shape: Any) -> None:
        """The payload helper's four shapes read back as the same events, and the batch names the shape."""
        batch = read_lambda_event(lambda_payload(EVENTS, shape=shape))
        assert [c.event for c in batch.changes] == EVENTS and batch.shape == shape

    def test_kinesis_records_carry_kinesis_sequence_numbers_and_shards(self) -> None:
        """A wrapped Kinesis record's change is reported by its Kinesis sequence number, within its shard."""
        batch = read_lambda_event(lambda_payload(EVENTS, shape="kinesis"))
        assert {c.shard_id for c in batch.changes} == {"shardId-000000000000"}
        assert all(c.sequence_number.startswith("4959") for c in batch.changes)

    def test_unwrapped_records_need_no_sequence_number(self) -> None:
        """Inner Kinesis records without SequenceNumber decode (they used to raise a raw KeyError) and say so."""
        batch = read_lambda_event(lambda_payload(EVENTS, shape="kinesis-unwrapped"))
        assert [c.sequence_number for c in batch.changes] == ["", ""] and not batch.reportable

    def test_a_bare_array_of_kinesis_records_is_kinesis(self) -> None:
        """EventBridge Pipes with a Kinesis source hands over the Kinesis records bare."""
        records = lambda_payload(EVENTS, shape="kinesis")["Records"]
        assert read_lambda_event(records).shape == "kinesis"


def sqs() -> dict[str, Any]:
    return {"Records": [{"messageId": "m-1", "body": "{}", "eventSource": "aws:sqs", "awsRegion": "eu-west-1"}]}


def sns() -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {"Message": "{}"}}]}


def eventbridge() -> dict[str, Any]:
    return {"version": "0", "id": "e-1", "detail-type": "OrderPlaced", "source": "shop", "detail": {}}


def kinesis_of(data: Any) -> dict[str, Any]:
    payload = lambda_payload(EVENTS[:1], shape="kinesis")
    payload["Records"][0]["kinesis"]["data"] = base64.b64encode(json.dumps(data).encode()).decode()
    return payload


class TestOtherSources:
    @pytest.mark.parametrize(
        ("payload", "found"),
        [
            pytest.param(sqs(), "record 0 of the payload is an SQS message", id="sqs"),
            pytest.param(sns(), "record 0 of the payload is an SNS notification", id="sns"),
            pytest.param(eventbridge(), "the payload is an EventBridge event (source 'shop'", id="eventbridge"),
            pytest.param(kinesis_of({"orderId": 1}), "data is not a DynamoDB change record", id="kinesis-other"),
            pytest.param({"Records": ["text"]}, "a str, not a record object", id="not-a-record"),
            pytest.param("text", "the payload is a str", id="not-a-payload"),
        ],
    )
    def test_the_error_says_what_arrived_and_what_was_expected(self, payload: Any, found: str) -> None:
        """LambdaPayloadError names the source found and lists the supported shapes."""
        with pytest.raises(LambdaPayloadError, match="expected DynamoDB Streams records") as caught:
            read_lambda_event(payload)
        assert found in str(caught.value)

    def test_kinesis_data_that_is_not_json(self) -> None:
        """Undecodable Kinesis data is a LambdaPayloadError, not a raw binascii or JSON error."""
        payload = lambda_payload(EVENTS[:1], shape="kinesis")
        payload["Records"][0]["kinesis"]["data"] = "!!not base64!!"
        with pytest.raises(LambdaPayloadError, match="without readable JSON data"):
            read_lambda_event(payload)

    def test_mixed_shapes_in_one_payload_are_refused(self) -> None:
        """A Streams record among Kinesis records is not a payload any one source sends."""
        payload = lambda_payload(EVENTS[:1], shape="kinesis")
        payload["Records"].extend(lambda_payload(EVENTS[1:])["Records"])
        with pytest.raises(LambdaPayloadError, match="record 1 of the payload is a streams record among kinesis"):
            read_lambda_event(payload)
