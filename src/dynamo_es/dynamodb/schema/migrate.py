"""Bring an events table made by an older version up to date: the outbox index, the stream, TTL, old events."""

from __future__ import annotations

import time
from typing import Any

from ...exceptions import EventStoreError
from ...settings import EventStoreSettings
from ..flows.errors import BOUNDARY_ERRORS, Failure, classify
from .model import OUTBOX_INDEX, EventItem, event_model, outbox_partition
from .table import ensure_table, model_keys

__all__ = ["migrate_events_table"]

_STREAM_VIEW = "NEW_AND_OLD_IMAGES"
_INDEX_TIMEOUT_SECONDS = 900.0


def migrate_events_table(settings: EventStoreSettings) -> list[str]:
    """Add what the events table lacks; return what changed, one line each (empty: up to date).

    Idempotent: a second run changes nothing. Adds the outbox index (and puts undispatched
    events written before it existed into it), turns the stream on when ``enable_streams``,
    and turns DynamoDB's TTL on for ``ttl_attribute``.

    Raises:
        TableNotFoundError, TableSchemaError: the table is missing or has other keys.
        EventStoreError: DynamoDB refused, or the stream has another view type.
    """
    model = event_model(settings)
    description = ensure_table(model, create=False, keys=model_keys(model))
    client: Any = model._get_connection().connection.client
    changes: list[str] = []
    try:
        if not any(index["IndexName"] == OUTBOX_INDEX for index in description.get("GlobalSecondaryIndexes", [])):
            _add_outbox_index(client, model, settings)
            changes.append(f"added the {OUTBOX_INDEX!r} index")
        if settings.enable_streams and _enable_stream(client, settings, description):
            changes.append(f"turned the stream on ({_STREAM_VIEW})")
        if _enable_ttl(client, settings):
            changes.append(f"turned TTL on ({settings.ttl_attribute!r}, for expiring temporary streams)")
        backfilled = _backfill_outbox(client, model, settings)
    except BOUNDARY_ERRORS as error:
        raise EventStoreError(f"cannot migrate table {settings.events_table_name!r}: {classify(error)[1]}") from error
    if backfilled:
        changes.append(f"put {backfilled} undispatched event(s) written before the index into the outbox")
    return changes


def _add_outbox_index(client: Any, model: type[EventItem], settings: EventStoreSettings) -> None:
    schema = model._get_schema()
    (index,) = [i for i in schema["global_secondary_indexes"] if i["index_name"] == OUTBOX_INDEX]
    create: dict[str, Any] = {"IndexName": OUTBOX_INDEX, "KeySchema": index["key_schema"]}
    create["Projection"] = index["projection"]
    if index.get("provisioned_throughput"):
        create["ProvisionedThroughput"] = index["provisioned_throughput"]
    client.update_table(
        TableName=settings.events_table_name,
        AttributeDefinitions=list(index["attribute_definitions"]),
        GlobalSecondaryIndexUpdates=[{"Create": create}],
    )
    _wait_for_index(client, settings.events_table_name)


def _wait_for_index(client: Any, table: str) -> None:
    deadline = time.monotonic() + _INDEX_TIMEOUT_SECONDS
    while True:
        indexes = client.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
        statuses = [i.get("IndexStatus") for i in indexes if i["IndexName"] == OUTBOX_INDEX]
        if statuses == ["ACTIVE"]:
            return
        if time.monotonic() > deadline:
            raise EventStoreError(f"the {OUTBOX_INDEX!r} index of {table!r} did not become ACTIVE in time")
        time.sleep(1.0)


def _enable_stream(client: Any, settings: EventStoreSettings, description: dict[str, Any]) -> bool:
    """Turn the stream on; False when it already is. Another view type cannot be changed in place."""
    stream = description.get("StreamSpecification", {})
    if stream.get("StreamEnabled"):
        if stream.get("StreamViewType") != _STREAM_VIEW:
            raise EventStoreError(
                f"the stream of {settings.events_table_name!r} shows {stream.get('StreamViewType')}; dynamo-es needs "
                f"{_STREAM_VIEW}. Turn the stream off, then run migrate again (consumers get a new stream ARN)"
            )
        return False
    client.update_table(
        TableName=settings.events_table_name,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": _STREAM_VIEW},
    )
    return True


def _enable_ttl(client: Any, settings: EventStoreSettings) -> bool:
    """Turn DynamoDB's TTL on for ``ttl_attribute``; False when it is on already (on any attribute: left alone)."""
    described = client.describe_time_to_live(TableName=settings.events_table_name)["TimeToLiveDescription"]
    if described.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if described.get("AttributeName") != settings.ttl_attribute:
            raise EventStoreError(
                f"TTL of {settings.events_table_name!r} is on {described.get('AttributeName')!r}, not on "
                f"ttl_attribute {settings.ttl_attribute!r}: set ttl_attribute to it"
            )
        return False
    client.update_time_to_live(
        TableName=settings.events_table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": settings.ttl_attribute},
    )
    return True


def _backfill_outbox(client: Any, model: type[EventItem], settings: EventStoreSettings) -> int:
    """Give undispatched events without an outbox partition one, so the index lists them."""
    names = {
        "#pending": model.outbox_pending.attr_name,
        "#dispatched": model.is_dispatched.attr_name,
        "#pk": model.pk.attr_name,
        "#sk": model.sk.attr_name,
    }
    scan: dict[str, Any] = {
        "TableName": settings.events_table_name,
        "FilterExpression": "attribute_not_exists(#pending) AND #dispatched = :no",
        "ProjectionExpression": "#pk, #sk",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":no": {"BOOL": False}},
        "ConsistentRead": True,
    }
    count = 0
    for page in client.get_paginator("scan").paginate(**scan):
        for key in page.get("Items", []):
            count += _put_in_outbox(client, model, key, names, settings)
    return count


def _put_in_outbox(
    client: Any, model: type[EventItem], key: dict[str, Any], names: dict[str, str], settings: EventStoreSettings
) -> int:
    partition = outbox_partition(key[names["#pk"]]["S"], settings.outbox_partitions)
    try:
        client.update_item(
            TableName=settings.events_table_name,
            Key=key,
            UpdateExpression="SET #pending = :partition",
            ConditionExpression="attribute_not_exists(#pending) AND #dispatched = :no",
            ExpressionAttributeNames={"#pending": names["#pending"], "#dispatched": names["#dispatched"]},
            ExpressionAttributeValues={":partition": {"S": partition}, ":no": {"BOOL": False}},
        )
    except BOUNDARY_ERRORS as error:
        if classify(error)[0] is Failure.CONFLICT:
            return 0  # dispatched meanwhile
        raise
    return 1
