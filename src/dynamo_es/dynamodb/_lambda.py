"""AWS Lambda: the DynamoDB-stream event a Lambda function receives, as Change objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._serialization import EventSerializer
from ..exceptions import SubscriptionError
from ..projections._changes import Change
from ..settings import EventStoreSettings
from ._model import EventItemCodec, event_model
from ._streams import record_decoder

__all__ = ["changes_from_lambda_event"]


def changes_from_lambda_event(
    event: Mapping[str, Any],
    *,
    serializer: EventSerializer | None = None,
    settings: EventStoreSettings | None = None,
) -> list[Change]:
    """The changes in a Lambda DynamoDB-stream event (its ``Records``), in delivery order.

    ``settings`` names the key attributes of the item schema. Lambda records carry no shard
    id, so ``Change.shard_id`` is None; feed the changes to
    ``Projection.handle`` to run the same handlers as a subscription, with the same
    per-aggregate de-duplication::

        def lambda_handler(event, context):
            projection.handle(changes_from_lambda_event(event))

    Raises:
        SubscriptionError: the payload is not a DynamoDB-stream event.
        SerializationError: an image cannot be decoded (UnknownEventTypeError for an unknown type).
    """
    records = event.get("Records")
    if not isinstance(records, list):
        raise SubscriptionError("not a DynamoDB-stream Lambda event: no 'Records' list")
    codec = EventItemCodec(event_model(settings or EventStoreSettings()))
    decode = record_decoder(serializer or EventSerializer(), codec)
    changes = []
    for record in records:
        if record.get("eventSource", "aws:dynamodb") != "aws:dynamodb" or "dynamodb" not in record:
            raise SubscriptionError(f"record {record.get('eventID')!r} is not from DynamoDB Streams")
        changes.append(decode(record, None))
    return changes
