"""Outbox reads and writes on the events table: the sparse ``outbox`` index."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from .._events import StoredEvent
from .._serialization import EncodedEvent
from ..exceptions import CorruptItemError, EventStoreError
from ._errors import BOUNDARY_ERRORS, Failure, classify
from ._model import OUTBOX_INDEX, EventItem, EventItemCodec

__all__ = ["OutboxIndex", "claim", "count_undispatched", "iter_undispatched", "mark_dispatched"]

log = logging.getLogger("dynamo_es.outbox")


@attrs.frozen
class OutboxIndex:
    """The outbox index of one events table, read through a wire-format client."""

    client: Any
    table: str
    codec: EventItemCodec

    def pages(self, partition: str, page_size: int, **options: Any) -> Iterator[dict[str, Any]]:
        """Query pages of one outbox partition (oldest first)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": OUTBOX_INDEX,
            "KeyConditionExpression": "#outbox = :partition",
            "ExpressionAttributeNames": {"#outbox": self.codec.outbox_attribute},
            "ExpressionAttributeValues": {":partition": {"S": partition}},
            "Limit": page_size,
            **options,
        }
        while True:
            try:
                page: dict[str, Any] = self.client.query(**params)
            except BOUNDARY_ERRORS as error:
                raise EventStoreError(f"cannot read the outbox index: {error}") from error
            yield page
            if not page.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _partition_records(index: OutboxIndex, partition: str, page_size: int) -> Iterator[EncodedEvent]:
    for page in index.pages(partition, page_size, ScanIndexForward=True):
        for item in page.get("Items", ()):
            try:
                yield index.codec.decode(item)
            except CorruptItemError as error:  # one bad item must not stop the outbox
                log.error("outbox: skipping a corrupt item: %s", error)


def iter_undispatched(
    index: OutboxIndex,
    decode: Callable[[EncodedEvent], StoredEvent],
    *,
    page_size: int,
) -> Iterator[StoredEvent]:
    """Undispatched events, oldest first across the outbox partitions, read page by page."""
    partitions = [_partition_records(index, str(p), page_size) for p in range(index.codec.model.outbox_partitions)]
    merged = heapq.merge(*partitions, key=lambda record: (record.timestamp, record.stream_id, record.version))
    for record in merged:
        yield decode(record)


def count_undispatched(index: OutboxIndex) -> int:
    """How many events the outbox index holds (a COUNT query per partition)."""
    total = 0
    for partition in range(index.codec.model.outbox_partitions):
        for page in index.pages(str(partition), 1000, Select="COUNT"):
            total += int(page.get("Count", 0))
    return total


def mark_dispatched(model: type[EventItem], stream_id: str, version: int) -> bool:
    """Set ``isDispatched`` and drop the event from the outbox index; False if it already was."""
    item = model(stream_id, version)
    try:
        item.update(
            actions=[model.is_dispatched.set(True), model.outbox_pending.remove()],
            condition=model.outbox_pending.exists(),
        )
    except BOUNDARY_ERRORS as error:
        if classify(error)[0] is Failure.CONFLICT:
            return False
        raise EventStoreError(f"cannot mark {stream_id} version {version} dispatched: {error}") from error
    return True


def claim(index: OutboxIndex, stream_id: str, version: int, *, owner: str, lease_seconds: float) -> bool:
    """Claim one undispatched event for ``owner`` until the lease ends; False when it cannot be claimed.

    One transaction: the claim holds only if the event is still undispatched and unclaimed (or
    its lease expired, or ``owner`` holds it), and the version before it is already dispatched,
    so two dispatchers keep each aggregate's events in order between them.
    """
    attributes = index.codec.model.get_attributes()
    names = {
        "#outbox": index.codec.outbox_attribute,
        "#by": attributes["claimed_by"].attr_name,
        "#until": attributes["claim_until"].attr_name,
    }
    now = time.time()
    update = {
        "TableName": index.table,
        "Key": index.codec.key(stream_id, version),
        "UpdateExpression": "SET #by = :owner, #until = :until",
        "ConditionExpression": "attribute_exists(#outbox) AND "
        "(attribute_not_exists(#until) OR #until < :now OR #by = :owner)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {
            ":owner": {"S": owner},
            ":until": {"N": repr(now + lease_seconds)},
            ":now": {"N": repr(now)},
        },
    }
    items: list[dict[str, Any]] = [{"Update": update}]
    if version > 1:
        previous = {
            "TableName": index.table,
            "Key": index.codec.key(stream_id, version - 1),
            "ConditionExpression": "attribute_not_exists(#outbox)",
            "ExpressionAttributeNames": {"#outbox": index.codec.outbox_attribute},
        }
        items.append({"ConditionCheck": previous})
    try:
        index.client.transact_write_items(TransactItems=items)
    except BOUNDARY_ERRORS as error:
        kind, reason = classify(error)
        if kind is Failure.TRANSIENT:
            log.info("outbox: claim of %s v%d not made (%s); the next pass tries again", stream_id, version, reason)
            return False
        if kind is Failure.CONFLICT:
            return False
        raise EventStoreError(f"cannot claim {stream_id} version {version}: {error}") from error
    return True
