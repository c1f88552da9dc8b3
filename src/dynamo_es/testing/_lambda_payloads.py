"""Lambda payloads made from stored events: what AWS hands a function, for tests of a handler."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from ..core.serialization import EventSerializer
from ..domain.events import NewEvent, StoredEvent
from ..dynamodb._lambda import PayloadShape
from ..dynamodb.schema.model import EventItemCodec, event_model
from ..settings import EventStoreSettings

__all__ = ["lambda_payload"]

Kind = Literal["INSERT", "MODIFY", "REMOVE"]
_REGION = "eu-west-1"
_ACCOUNT = "123456789012"


def lambda_payload(
    events: Iterable[StoredEvent | Mapping[str, Any]],
    *,
    shape: PayloadShape = "streams",
    settings: EventStoreSettings | None = None,
    serializer: EventSerializer | None = None,
    kind: Kind = "INSERT",
    first_sequence: int = 1,
) -> Any:
    """A Lambda payload delivering ``events`` as the events table's stream would, in the given ``shape``.

    Each element is a stored event (as ``store.load()`` returns it) or an item in DynamoDB's
    wire format (to deliver a corrupt or foreign item). The shapes are those
    ``lambda_handler`` reads: "streams" (a DynamoDB Streams event source mapping), "pipes"
    (EventBridge Pipes: a bare array), "kinesis" (Kinesis Data Streams for DynamoDB, base64
    ``data``) and "kinesis-unwrapped" (its inner records). Records are numbered from
    ``first_sequence``; the payload is plain JSON, as Lambda delivers it.

    ::

        handler = lambda_handler(projection)
        response = handler(lambda_payload(store.load("acc-1", "Account")), None)
        assert response == {"batchItemFailures": []}
    """
    settings = settings or EventStoreSettings()
    codec = EventItemCodec(event_model(settings))
    serializer = serializer or EventSerializer()
    records = [
        _record(_item(value, codec, serializer), codec, settings, kind, sequence)
        for sequence, value in enumerate(events, start=first_sequence)
    ]
    if shape == "kinesis":
        records = [_kinesis(record, sequence) for sequence, record in enumerate(records, start=first_sequence)]
    elif shape == "kinesis-unwrapped":
        records = [_unwrapped(record) for record in records]
    payload: Any = records if shape == "pipes" else {"Records": records}
    return json.loads(json.dumps(payload))


def _item(value: StoredEvent | Mapping[str, Any], codec: EventItemCodec, serializer: EventSerializer) -> Any:
    if not isinstance(value, StoredEvent):
        return dict(value)
    envelope = NewEvent(value.event, event_id=value.event_id, timestamp=value.timestamp, metadata=value.metadata)
    encoded = serializer.encode(
        envelope, aggregate_type=value.aggregate_type, aggregate_id=value.aggregate_id, version=value.version
    )
    return codec.encode(attrs.evolve(encoded, is_dispatched=value.is_dispatched))


def _record(
    item: dict[str, Any], codec: EventItemCodec, settings: EventStoreSettings, kind: Kind, sequence: int
) -> dict[str, Any]:
    keys = {name: item[name] for name in (codec.partition_key, codec.sort_key) if name in item}
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": _created(item),
        "Keys": keys,
        "SequenceNumber": f"{sequence:021d}",
        "SizeBytes": len(json.dumps(item)),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if kind != "REMOVE":
        body["NewImage"] = item
    if kind != "INSERT":
        body["OldImage"] = item
    table = settings.events_table_name
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": kind,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": _REGION,
        "dynamodb": body,
        "eventSourceARN": f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/{table}/stream/2026-01-01T00:00:00.000",
    }


def _created(item: Mapping[str, Any]) -> float:
    """Epoch seconds of the item's timestamp (Lambda's form), or now."""
    text = item.get("timestamp", {}).get("S") if isinstance(item.get("timestamp"), Mapping) else None
    try:
        return float(int(datetime.fromisoformat(str(text)).timestamp()))
    except ValueError:
        return float(int(datetime.now().timestamp()))


def _unwrapped(record: dict[str, Any]) -> dict[str, Any]:
    """The change record Kinesis Data Streams for DynamoDB carries: no sequence number, a table name, ms times."""
    body = {key: value for key, value in record["dynamodb"].items() if key not in ("SequenceNumber", "StreamViewType")}
    body["ApproximateCreationDateTime"] = int(record["dynamodb"]["ApproximateCreationDateTime"] * 1000)
    table = record["eventSourceARN"].split("table/")[1].split("/")[0]
    return {
        "awsRegion": _REGION,
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": body,
        "eventSource": "aws:dynamodb",
    }


def _kinesis(record: dict[str, Any], sequence: int) -> dict[str, Any]:
    """A Kinesis Lambda record whose base64 ``data`` is the unwrapped change record."""
    kinesis_sequence = f"4959{sequence:052d}"
    data = base64.b64encode(json.dumps(_unwrapped(record)).encode()).decode()
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": uuid.uuid5(uuid.NAMESPACE_OID, json.dumps(record["dynamodb"]["Keys"])).hex,
            "sequenceNumber": kinesis_sequence,
            "data": data,
            "approximateArrivalTimestamp": record["dynamodb"]["ApproximateCreationDateTime"],
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{kinesis_sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{_ACCOUNT}:role/projection",
        "awsRegion": _REGION,
        "eventSourceARN": f"arn:aws:kinesis:{_REGION}:{_ACCOUNT}:stream/events",
    }
