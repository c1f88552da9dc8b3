"""AWS Lambda: every payload shape a stream of the events table reaches a function in, and a handler.

- DynamoDB Streams through a Lambda event source mapping: ``{"Records": [...]}``.
- EventBridge Pipes: a bare JSON array of the same records.
- Kinesis Data Streams for DynamoDB: ``{"Records": [{"kinesis": {"data": <base64 JSON>}}]}``.
- Kinesis Data Streams for DynamoDB, unwrapped by a tool on the way: the inner change records
  (``recordFormat``, ``tableName``, no ``SequenceNumber``), in ``Records`` or as an array.

Anything else (SQS, SNS, EventBridge events, Kinesis data that is not a DynamoDB change record)
raises [`LambdaPayloadError`][dynamo_es.exceptions.LambdaPayloadError], naming what arrived.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from ..core.changes import Change
from ..core.reading import Selection
from ..core.serialization import EventSerializer
from ..exceptions import ConfigurationError, LambdaPayloadError, ProjectionError
from ..observability import tracing
from ..observability.emf import batch_emf, is_namespace
from ..observability.logs import log_fields
from ..projections import BatchOutcome, Projection
from ..settings import EventStoreSettings
from .flows.records import record_decoder
from .schema.model import EventItemCodec, event_model

__all__ = [
    "LambdaBatch",
    "PayloadShape",
    "changes_from_lambda_event",
    "lambda_handler",
    "partial_batch_response",
    "read_lambda_event",
]

log = logging.getLogger("dynamo_es.projections")

LambdaHandler = Callable[[Any, Any], dict[str, list[dict[str, str]]]]
PayloadShape = Literal["streams", "pipes", "kinesis", "kinesis-unwrapped"]
"""The shapes a payload may have (see the module)."""


@attrs.frozen
class LambdaBatch:
    """The decoded records of one Lambda invocation.

    Attributes:
        changes: the event changes, in delivery order (unread and undecodable ones included,
            flagged as such).
        foreign: records skipped because their item is not an event (single-table designs).
        shape: the payload's shape ("streams", "pipes", "kinesis" or "kinesis-unwrapped").
    """

    changes: list[Change]
    foreign: int = 0
    shape: PayloadShape = "streams"

    @property
    def reportable(self) -> bool:
        """Whether Lambda's partial batch response can name these records (unwrapped ones carry no sequence number)."""
        return self.shape != "kinesis-unwrapped"


def read_lambda_event(
    event: Any,
    *,
    settings: EventStoreSettings | None = None,
    serializer: EventSerializer | None = None,
    reads: Selection | None = None,
) -> LambdaBatch:
    """Decode any supported payload (see the module) into changes.

    ``settings`` names the item schema's key attributes. For a Kinesis record, the change's
    ``sequence_number`` is the Kinesis sequence number and ``shard_id`` the Kinesis shard, as
    Lambda's partial batch response expects; DynamoDB Streams records carry no shard id.
    Records outside ``reads`` come as unread changes (not decoded); a record that cannot be
    decoded comes as a change carrying its ``error``.

    Raises:
        LambdaPayloadError: not a supported payload; the error says what arrived.
        SubscriptionError: a record without the item image (the stream view must be
            NEW_AND_OLD_IMAGES or NEW_IMAGE).
    """
    codec = EventItemCodec(event_model(settings or EventStoreSettings()))
    decode = record_decoder(serializer or EventSerializer(), codec, reads)
    records, bare = _records(event)
    changes: list[Change] = []
    foreign, kinds = 0, set()
    for index, raw in enumerate(records):
        record, shard_id, kind = _stream_record(raw, index)
        kinds.add(kind)
        if len(kinds) > 1:
            raise LambdaPayloadError(f"a {kind} record among {sorted(kinds - {kind})[0]} records", index=index)
        change = decode(record, shard_id)
        if change is None:
            foreign += 1
        else:
            changes.append(change)
    shape: PayloadShape = kinds.pop() if kinds else "streams"
    if bare and shape == "streams":
        shape = "pipes"
    return LambdaBatch(changes, foreign, shape)


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
    projection: Projection,
    *,
    settings: EventStoreSettings | None = None,
    serializer: EventSerializer | None = None,
    emf_namespace: str | None = None,
) -> LambdaHandler:
    """A Lambda function body that feeds ``projection`` and answers with a partial batch response.

    Records are decoded with ``settings``' item schema, by default the projection's store's,
    and only what the projection reads is decoded. Each invocation logs what it did (applied,
    skipped, unread, failed, parked) at INFO on ``dynamo_es.projections``.

    Set ``FunctionResponseTypes: [ReportBatchItemFailures]`` on the event source mapping, or
    Lambda ignores the response. Unwrapped Kinesis records carry no sequence number to report:
    a batch of them with failures raises the first failure, so Lambda delivers the batch
    again (the version rule skips what was applied).

    Each invocation is a span (``dynamo_es.lambda``, with the FaaS attributes of ``context``)
    holding the projection's batch span. With ``emf_namespace``, each invocation also prints one
    line of CloudWatch Embedded Metric Format (applied, skipped, failed, parked, lag and
    iterator age, by projection), which CloudWatch Logs turns into metrics with no agent and no
    package. ::

        handler = lambda_handler(Projection("balances", apply, checkpoints, store))
    """
    schema = settings or getattr(projection.store, "settings", None)
    if emf_namespace is not None and not is_namespace(emf_namespace):
        raise ConfigurationError("emf_namespace", f"a CloudWatch namespace is 1-255 characters, not {emf_namespace!r}")

    def handle(event: Any, context: Any = None) -> dict[str, list[dict[str, str]]]:
        batch = read_lambda_event(
            event, settings=schema, serializer=serializer or projection.store.serializer, reads=projection.selection
        )
        if batch.foreign and not batch.changes:
            log.warning(
                "%s: none of %d records held an event item; if the table's key attributes are not %s, "
                "pass settings=", projection.name, batch.foreign, "pk/sk" if schema is None else
                f"{schema.partition_key_attribute}/{schema.sort_key_attribute}",
            )  # fmt: skip
        with tracing.invocation(projection.name, context, [change.event for change in batch.changes]):
            outcome = projection.handle(batch.changes)
            _log_outcome(projection.name, batch, outcome)
            if emf_namespace is not None:
                print(batch_emf(emf_namespace, projection.name, batch.changes, outcome), flush=True)
            if outcome.failed and not batch.reportable:  # raised in the span: it ends in error
                raise outcome.errors[0] if outcome.errors else ProjectionError(projection.name, "<batch>", 0, 0)
        return partial_batch_response(outcome)

    return handle


def _log_outcome(name: str, batch: LambdaBatch, outcome: BatchOutcome) -> None:
    log.info(
        "%s: %d records (%s): %d applied, %d skipped (%d not read), %d foreign items, %d failed, %d parked",
        name, len(batch.changes) + batch.foreign, batch.shape, outcome.applied, outcome.skipped, outcome.unread,
        batch.foreign, len(outcome.failed), len(outcome.parked), extra=log_fields(projection=name),
    )  # fmt: skip


def _records(event: Any) -> tuple[list[Any], bool]:
    """The payload's records, and whether they came as a bare array (EventBridge Pipes)."""
    if isinstance(event, list):
        return event, True
    if isinstance(event, Mapping) and isinstance(event.get("Records"), list):
        return event["Records"], False
    raise LambdaPayloadError(_describe(event))


def _stream_record(record: Any, index: int) -> tuple[Mapping[str, Any], str | None, PayloadShape]:
    """One record in DynamoDB Streams shape, its shard id where the payload gives one, and its shape."""
    if not isinstance(record, Mapping):
        raise LambdaPayloadError(f"a {type(record).__name__}, not a record object", index=index)
    if record.get("eventSource") == "aws:kinesis" or "kinesis" in record:
        inner, shard_id = _from_kinesis(record, index)
        return inner, shard_id, "kinesis"
    if _is_dynamodb(record):
        unwrapped = "SequenceNumber" not in record["dynamodb"] and ("recordFormat" in record or "tableName" in record)
        return record, None, "kinesis-unwrapped" if unwrapped else "streams"
    raise LambdaPayloadError(_describe(record), index=index)


def _is_dynamodb(record: Mapping[str, Any]) -> bool:
    return record.get("eventSource", "aws:dynamodb") == "aws:dynamodb" and isinstance(record.get("dynamodb"), Mapping)


def _from_kinesis(record: Mapping[str, Any], index: int) -> tuple[Mapping[str, Any], str | None]:
    kinesis = record.get("kinesis")
    try:
        inner = json.loads(base64.b64decode(kinesis["data"], validate=True))  # type: ignore[index]
    except (KeyError, TypeError, ValueError, binascii.Error) as error:
        raise LambdaPayloadError(f"a Kinesis record without readable JSON data ({error})", index=index) from error
    if not isinstance(inner, dict) or not _is_dynamodb(inner) or "eventSource" not in inner:
        raise LambdaPayloadError(
            f"a Kinesis record whose data is not a DynamoDB change record ({_describe(inner)})", index=index
        )
    stream_record = {**inner["dynamodb"], "SequenceNumber": kinesis.get("sequenceNumber")}  # type: ignore[union-attr]
    shard_id = str(record.get("eventID", "")).partition(":")[0] or None
    return {**inner, "dynamodb": stream_record}, shard_id


_SOURCES = {
    "aws:sqs": "an SQS message",
    "aws:sns": "an SNS notification",
    "aws:s3": "an S3 notification",
    "aws:kafka": "a Kafka record",
}


def _describe(value: Any) -> str:
    """What arrived, in words: the source a record names, or its type and keys."""
    if isinstance(value, Mapping):
        source = value.get("eventSource") or value.get("EventSource")
        if source in _SOURCES:
            return f"{_SOURCES[source]} (eventSource {source!r})"
        if "detail-type" in value and "source" in value:
            return f"an EventBridge event (source {value['source']!r}, detail-type {value['detail-type']!r})"
        if source:
            return f"a record from {source!r}"
        return f"an object with keys {sorted(map(str, value))[:8]}"
    return f"a {type(value).__name__}"
