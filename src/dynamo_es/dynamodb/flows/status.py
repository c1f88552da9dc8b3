"""What ``dynamo-es status`` reads, as flows: every checkpoint row, and the oldest stream record after a position.

The checkpoints table is read with one paged, consistent Scan of the few attributes a summary
needs; the stream of the events table is probed per shard with one record after the saved
position (``GetRecords`` with ``Limit`` 1), so a caught-up projection costs two calls a shard.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pynamodb.attributes import Attribute

from ...core.changes import SHARD_END
from ...exceptions import EventStoreError, SubscriptionError
from .base import Call, Flow
from .checkpoints import CheckpointItem
from .errors import BOUNDARY_ERRORS
from .records import creation_time

__all__ = ["PROBE_PAGES", "checkpoint_rows", "oldest_unread", "shards_of"]

PROBE_PAGES = 3
"""GetRecords calls per shard before a shard counts as read to its end (an empty page proves little on AWS)."""


def checkpoint_rows(table: str, model: type[CheckpointItem]) -> Flow[list[CheckpointItem]]:
    """Every row of the checkpoints ``table`` (positions and stream progress), with the attributes a summary reads."""
    attributes: list[Attribute[Any]] = [
        model.name,
        model.key,
        model.shard_sequence,
        model.failures,
        model.parked,
        model.updated_at,
    ]
    names = {f"#a{index}": attribute.attr_name for index, attribute in enumerate(attributes)}
    params: dict[str, Any] = {
        "TableName": table,
        "ConsistentRead": True,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    rows: list[CheckpointItem] = []
    while True:
        try:
            page = yield Call("scan", params)
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read the checkpoints table {table!r}: {error}") from error
        rows.extend(model.from_raw_data(raw) for raw in page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            return rows
        params = {**params, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def shards_of(stream_arn: str) -> Flow[list[str]]:
    """The ids of the stream's shards (DescribeStream, paged)."""
    shards: list[str] = []
    request: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        try:
            response = yield Call("describe_stream", dict(request))
        except BOUNDARY_ERRORS as error:
            raise SubscriptionError(f"cannot describe stream {stream_arn}: {error}") from error
        description = response["StreamDescription"]
        shards.extend(shard["ShardId"] for shard in description.get("Shards", []))
        if not description.get("LastEvaluatedShardId"):
            return shards
        request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]


def oldest_unread(stream_arn: str, shards: list[str], position: Mapping[str, str]) -> Flow[datetime | None]:
    """When the oldest record after ``position`` was written, across ``shards``; None when there is none."""
    oldest: datetime | None = None
    for shard_id in shards:
        sequence = position.get(shard_id)
        if sequence == SHARD_END:
            continue
        written = yield from _first_record_time(stream_arn, shard_id, sequence)
        if written is not None and (oldest is None or written < oldest):
            oldest = written
    return oldest


def _first_record_time(stream_arn: str, shard_id: str, after: str | None) -> Flow[datetime | None]:
    request: dict[str, Any] = {"StreamArn": stream_arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
    if after is not None:
        request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
    try:
        iterator = (yield Call("get_shard_iterator", request)).get("ShardIterator")
        for _ in range(PROBE_PAGES):
            if not iterator:
                return None
            page = yield Call("get_records", {"ShardIterator": iterator, "Limit": 1})
            if page.get("Records"):
                return creation_time(page["Records"][0]["dynamodb"].get("ApproximateCreationDateTime"))
            iterator = page.get("NextShardIterator")
    except BOUNDARY_ERRORS as error:
        raise SubscriptionError(f"cannot read shard {shard_id} of {stream_arn}: {error}") from error
    return None
