"""AWS Lambda: every payload shape a stream of the events table reaches a function in, and a handler.

- DynamoDB Streams through a Lambda event source mapping: ``{"Records": [...]}``.
- EventBridge Pipes: a bare JSON array of the same records.
- Kinesis Data Streams for DynamoDB: ``{"Records": [{"kinesis": {"data": <base64 JSON>}}]}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from .._serialization import EventSerializer
from ..exceptions import SubscriptionError
from ..projections._batch import BatchOutcome
from ..projections._changes import Change
from ..projections._projection import Projection
from ..settings import EventStoreSettings
from ._model import EventItemCodec, event_model
from ._streams import record_decoder

__all__ = ["LambdaBatch", "changes_from_lambda_event", "lambda_handler", "partial_batch_response", "read_lambda_event"]

log = logging.getLogger("dynamo_es.projections")

LambdaHandler = Callable[[Any, Any], dict[str, list[dict[str, str]]]]


@attrs.frozen
class LambdaBatch:
    """The decoded records of one Lambda invocation.

    Attributes:
        changes: the event changes, in delivery order.
        foreign: records skipped because their item is not an event (single-table designs).
    """

    changes: list[Change]
    foreign: int = 0


def read_lambda_event(
    event: Any, *, settings: EventStoreSettings | None = None, serializer: EventSerializer | None = None
) -> LambdaBatch:
    """Decode any supported payload (see the module) into changes.

    ``settings`` names the item schema's key attributes. For a Kinesis record, the change's
    ``sequence_number`` is the Kinesis sequence number and ``shard_id`` the Kinesis shard, as
    Lambda's partial batch response expects; DynamoDB Streams records carry no shard id.

    Raises:
        SubscriptionError: not a supported payload, or a record without the item image
            (the stream view must be NEW_AND_OLD_IMAGES or NEW_IMAGE).
        SerializationError: an event item cannot be decoded.
    """
    codec = EventItemCodec(event_model(settings or EventStoreSettings()))
    decode = record_decoder(serializer or EventSerializer(), codec)
    changes: list[Change] = []
    foreign = 0
    for record, shard_id in _stream_records(event):
        change = decode(record, shard_id)
        if change is None:
            foreign += 1
        else:
            changes.append(change)
    return LambdaBatch(changes, foreign)


def changes_from_lambda_event(
    event: Any, *, settings: EventStoreSettings | None = None, serializer: EventSerializer | None = None
) -> list[Change]:
    """The event changes in a payload, in delivery order (see `read_lambda_event()`)."""
    return read_lambda_event(event, settings=settings, serializer=serializer).changes


def partial_batch_response(outcome: BatchOutcome) -> dict[str, list[dict[str, str]]]:
    """Lambda's ReportBatchItemFailures response: the delivered records to deliver again.

    Lambda checkpoints before the lowest reported sequence number and delivers everything after
    it again; the projection's version rule skips what it already applied.
    """
    return {"batchItemFailures": [{"itemIdentifier": change.sequence_number} for change in outcome.failed]}


def lambda_handler(
    projection: Projection, *, settings: EventStoreSettings | None = None, serializer: EventSerializer | None = None
) -> LambdaHandler:
    """A Lambda function body that feeds ``projection`` and answers with a partial batch response.

    Records are decoded with ``settings``' item schema, by default the projection's store's.

    Set ``FunctionResponseTypes: [ReportBatchItemFailures]`` on the event source mapping, or
    Lambda ignores the response. ::

        handler = lambda_handler(Projection("balances", apply, checkpoints, store))
    """
    schema = settings or getattr(projection.store, "settings", None)

    def handle(event: Any, context: Any = None) -> dict[str, list[dict[str, str]]]:
        batch = read_lambda_event(event, settings=schema, serializer=serializer or projection.store.serializer)
        if batch.foreign and not batch.changes:
            log.warning(
                "%s: none of %d records held an event item; if the table's key attributes are not %s, "
                "pass settings=", projection.name, batch.foreign, "pk/sk" if schema is None else
                f"{schema.partition_key_attribute}/{schema.sort_key_attribute}",
            )  # fmt: skip
        return partial_batch_response(projection.handle(batch.changes))

    return handle


def _stream_records(event: Any) -> Iterator[tuple[Mapping[str, Any], str | None]]:
    """Each record in DynamoDB Streams shape, with its shard id where the payload gives one."""
    if isinstance(event, list):
        records = event
    elif isinstance(event, Mapping) and isinstance(event.get("Records"), list):
        records = event["Records"]
    else:
        raise SubscriptionError(
            "not a stream payload: expected {'Records': [...]} (Lambda) or a JSON array of records (EventBridge Pipes)"
        )
    for record in records:
        if isinstance(record, Mapping) and (record.get("eventSource") == "aws:kinesis" or "kinesis" in record):
            yield _from_kinesis(record)
        elif isinstance(record, Mapping) and _is_dynamodb(record):
            yield record, None
        else:
            name = record.get("eventID") if isinstance(record, Mapping) else record
            raise SubscriptionError(f"record {name!r} is not from DynamoDB Streams or Kinesis Data Streams")


def _is_dynamodb(record: Mapping[str, Any]) -> bool:
    return record.get("eventSource", "aws:dynamodb") == "aws:dynamodb" and isinstance(record.get("dynamodb"), Mapping)


def _from_kinesis(record: Mapping[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    kinesis = record.get("kinesis")
    try:
        inner = json.loads(base64.b64decode(kinesis["data"], validate=True))  # type: ignore[index]
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        raise SubscriptionError(f"Kinesis record {record.get('eventID')!r} has no readable data: {error}") from error
    if not isinstance(inner, dict) or not _is_dynamodb(inner) or "eventSource" not in inner:
        raise SubscriptionError(f"Kinesis record {record.get('eventID')!r} does not hold a DynamoDB change record")
    stream_record = {**inner["dynamodb"], "SequenceNumber": kinesis.get("sequenceNumber")}  # type: ignore[union-attr]
    shard_id = str(record.get("eventID", "")).partition(":")[0] or None
    return {**inner, "dynamodb": stream_record}, shard_id
