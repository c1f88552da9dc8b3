"""DynamoDB requests of the event store, built without I/O: what to send for an append or a read."""

from __future__ import annotations

import uuid
from typing import Any

from ...core.serialization import EncodedEvent
from ...domain.lifecycle import STREAM_ARCHIVED, STREAM_DELETED, STREAM_TRUNCATED
from ..schema.model import EventItemCodec

__all__ = [
    "check_exists",
    "live_event",
    "not_deleted",
    "put_event",
    "query_page",
    "request_token",
    "transaction",
    "version_ranges",
]

_TOKEN_NAMESPACE = uuid.UUID("6f1c3a52-6d0e-4a57-9d4b-2f5f3f0c9e11")


def request_token(batch: list[EncodedEvent], check_version: int | None) -> str:
    """DynamoDB's idempotency token for a transaction, derived from what it writes."""
    parts = [batch[0].stream_id, str(check_version), *(record.event_id for record in batch)]
    return str(uuid.uuid5(_TOKEN_NAMESPACE, "\n".join(parts)))


def _slot_free(codec: EventItemCodec) -> dict[str, Any]:
    return {"ConditionExpression": "attribute_not_exists(#sk)", "ExpressionAttributeNames": {"#sk": codec.sort_key}}


def put_event(table: str, codec: EventItemCodec, record: EncodedEvent) -> dict[str, Any]:
    """A Put of ``record`` into a free version slot (PutItem parameters, or a transaction's Put)."""
    return {"TableName": table, "Item": codec.encode(record), **_slot_free(codec)}


def transaction(table: str, codec: EventItemCodec, batch: list[EncodedEvent], check: int | None) -> dict[str, Any]:
    """TransactWriteItems parameters: each event into a free slot, and optionally a check that ``check`` exists."""
    items: list[dict[str, Any]] = []
    if check is not None:
        items.append({"ConditionCheck": check_exists(table, codec, batch[0].stream_id, check)})
    items.extend({"Put": put_event(table, codec, record)} for record in batch)
    return {"TransactItems": items, "ClientRequestToken": request_token(batch, check)}


def check_exists(table: str, codec: EventItemCodec, stream_id: str, version: int) -> dict[str, Any]:
    """A ConditionCheck that version ``version`` of the stream exists and is an event (not a deletion's mark)."""
    return {"TableName": table, "Key": codec.key(stream_id, version), **live_event(codec)}


def live_event(codec: EventItemCodec) -> dict[str, Any]:
    """The condition that an item is there and is an event: no deleted, truncated or archived stream's mark."""
    return {
        "ConditionExpression": "attribute_exists(#sk) AND NOT #type IN (:deleted, :truncated, :archived)",
        "ExpressionAttributeNames": {"#sk": codec.sort_key, "#type": codec.event_type_attribute},
        "ExpressionAttributeValues": {
            ":deleted": {"S": STREAM_DELETED},
            ":truncated": {"S": STREAM_TRUNCATED},
            ":archived": {"S": STREAM_ARCHIVED},
        },
    }


def not_deleted(codec: EventItemCodec) -> dict[str, Any]:
    """The condition that an item is there and is no deleted or archived stream's mark (an event, or a truncation's)."""
    return {
        "ConditionExpression": "attribute_exists(#sk) AND NOT #type IN (:deleted, :archived)",
        "ExpressionAttributeNames": {"#sk": codec.sort_key, "#type": codec.event_type_attribute},
        "ExpressionAttributeValues": {":deleted": {"S": STREAM_DELETED}, ":archived": {"S": STREAM_ARCHIVED}},
    }


def query_page(
    table: str,
    codec: EventItemCodec,
    stream_id: str,
    versions: tuple[int, int | None],
    *,
    limit: int | None,
    forward: bool,
    start_key: dict[str, Any] | None,
) -> dict[str, Any]:
    """Query parameters for one strongly consistent page of a stream's events in ``versions`` (inclusive)."""
    first, last = versions
    condition = "#pk = :pk AND " + ("#sk >= :first" if last is None else "#sk BETWEEN :first AND :last")
    values: dict[str, Any] = {":pk": {"S": stream_id}, ":first": {"N": str(first)}}
    if last is not None:
        values[":last"] = {"N": str(last)}
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": {"#pk": codec.partition_key, "#sk": codec.sort_key},
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
        "ScanIndexForward": forward,
    }
    if limit is not None:
        params["Limit"] = limit
    if start_key is not None:
        params["ExclusiveStartKey"] = start_key
    return params


def version_ranges(first: int, last: int, *, size: int, most: int) -> list[tuple[int, int]]:
    """``first`` to ``last`` as consecutive inclusive ranges of ``size`` versions, at most ``most`` of them."""
    count = last - first + 1
    if count <= 0:
        return []
    size = max(size, 1, -(-count // most))
    return [(start, min(start + size - 1, last)) for start in range(first, last + 1, size)]
