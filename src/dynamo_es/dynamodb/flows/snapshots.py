"""The snapshot store's operations as flows: one consistent Query for the latest, one PutItem to save."""

from __future__ import annotations

from typing import Any

import cattrs

from ...core.serialization import default_converter
from ...exceptions import EventStoreError, SnapshotError
from ...ports.snapshots import Snapshot
from ...ports.store import check_version, make_stream_id
from ...settings import EventStoreSettings
from ..schema.limits import MAX_ITEM_BYTES
from ..schema.snapshots import snapshot_model
from .base import Call, Flow
from .errors import BOUNDARY_ERRORS

__all__ = ["check_snapshot", "delete_all_flow", "load_latest_flow", "save_flow"]


def check_snapshot(snapshot: Snapshot) -> str:
    """The snapshot's stream id, after checking that it fits in one item."""
    stream_id = make_stream_id(snapshot.aggregate_type, snapshot.aggregate_id)
    size = len(snapshot.state.encode()) + len(stream_id) * 2 + 200
    if size > MAX_ITEM_BYTES:
        raise SnapshotError(f"snapshot of {stream_id} at v{snapshot.version} is {size:,} bytes; the limit is 400 KB")
    return stream_id


def load_latest_flow(
    settings: EventStoreSettings, aggregate_type: str, aggregate_id: str, max_version: int | None
) -> Flow[Snapshot | None]:
    """The newest snapshot at or below ``max_version`` (one consistent Query of one item)."""
    stream_id = make_stream_id(aggregate_type, aggregate_id)
    model = snapshot_model(settings)
    condition = "#pk = :pk"
    names = {"#pk": model.stream_id.attr_name}
    values: dict[str, Any] = {":pk": {"S": stream_id}}
    if max_version is not None:
        condition += " AND #sk <= :max"
        names["#sk"] = model.version.attr_name
        values[":max"] = {"N": str(check_version("max_version", max_version))}
    params = {
        "TableName": settings.snapshots_table_name,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
        "ScanIndexForward": False,
        "Limit": 1,
    }
    try:
        items = (yield Call("query", params)).get("Items", [])
    except BOUNDARY_ERRORS as error:
        raise EventStoreError(f"cannot read snapshots of {stream_id}: {error}") from error
    if not items:
        return None
    try:
        return default_converter.structure(model.from_raw_data(items[0]).attribute_values, Snapshot)
    except (ValueError, TypeError, AttributeError, cattrs.BaseValidationError) as error:
        raise SnapshotError(f"unreadable snapshot of {stream_id}: {error}") from error


def save_flow(settings: EventStoreSettings, snapshot: Snapshot) -> Flow[None]:
    """Put the snapshot's item (one PutItem; a snapshot at the same version is replaced)."""
    stream_id = check_snapshot(snapshot)
    item = snapshot_model(settings)(stream_id=stream_id, **default_converter.unstructure(snapshot))
    try:
        yield Call("put_item", item.get_save_kwargs_from_instance())
    except BOUNDARY_ERRORS as error:
        raise EventStoreError(f"cannot save a snapshot of {stream_id}: {error}") from error


def delete_all_flow(settings: EventStoreSettings, aggregate_type: str, aggregate_id: str) -> Flow[int]:
    """Delete every snapshot of the aggregate (a consistent Query of their keys, one DeleteItem each)."""
    stream_id = make_stream_id(aggregate_type, aggregate_id)
    model = snapshot_model(settings)
    keys = {"#pk": model.stream_id.attr_name, "#sk": model.version.attr_name}
    params: dict[str, Any] = {
        "TableName": settings.snapshots_table_name,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": keys,
        "ExpressionAttributeValues": {":pk": {"S": stream_id}},
        "ProjectionExpression": "#pk, #sk",
        "ConsistentRead": True,
    }
    deleted = 0
    try:
        while True:
            page = yield Call("query", params)
            for key in page.get("Items", []):
                yield Call("delete_item", {"TableName": settings.snapshots_table_name, "Key": key})
                deleted += 1
            if "LastEvaluatedKey" not in page:
                return deleted
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except BOUNDARY_ERRORS as error:
        raise EventStoreError(f"cannot delete the snapshots of {stream_id}: {error}") from error
