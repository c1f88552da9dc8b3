"""Outbox reads and writes on the events table (the sparse ``outbox`` index), as flows.

The sync and the async stores drive the same flows: reading the index partitions merged
oldest first, counting, claiming and marking.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import deque
from typing import Any

import attrs

from ...core.serialization import EncodedEvent
from ...exceptions import CorruptItemError, EventStoreError
from ...observability.logs import log_fields
from ..schema.model import OUTBOX_INDEX, EventItem, EventItemCodec
from .base import Call, Flow
from .errors import BOUNDARY_ERRORS, Failure, classify

__all__ = ["OutboxIndex", "OutboxReader"]

log = logging.getLogger("dynamo_es.outbox")

_OrderKey = tuple[str, str, int]


def _order(record: EncodedEvent) -> _OrderKey:
    return (record.timestamp, record.stream_id, record.version)


@attrs.frozen
class OutboxIndex:
    """The outbox index of one events table: its requests as flows."""

    table: str
    codec: EventItemCodec

    @property
    def model(self) -> type[EventItem]:
        """The events table's model."""
        return self.codec.model

    def page(
        self, partition: int, page_size: int, start: dict[str, Any] | None, **options: Any
    ) -> Flow[dict[str, Any]]:
        """One Query page of an outbox partition (oldest first)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": OUTBOX_INDEX,
            "KeyConditionExpression": "#outbox = :partition",
            "ExpressionAttributeNames": {"#outbox": self.codec.outbox_attribute},
            "ExpressionAttributeValues": {":partition": {"S": str(partition)}},
            "Limit": page_size,
            **options,
        }
        if start:
            params["ExclusiveStartKey"] = start
        try:
            page: dict[str, Any] = yield Call("query", params)
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read the outbox index: {error}") from error
        return page

    def count(self) -> Flow[int]:
        """How many events the index holds (a COUNT query per partition)."""
        total = 0
        for partition in range(self.model.outbox_partitions):
            start = None
            while True:
                page = yield from self.page(partition, 1000, start, Select="COUNT")
                total += int(page.get("Count", 0))
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
        return total

    def mark_dispatched(self, stream_id: str, version: int) -> Flow[bool]:
        """Set ``isDispatched`` and drop the event from the index; False if it already was."""
        model = self.model
        params = model(stream_id, version).get_update_kwargs_from_instance(
            actions=[model.is_dispatched.set(True), model.outbox_pending.remove()],
            condition=model.outbox_pending.exists(),
        )
        try:
            yield Call("update_item", params)
        except BOUNDARY_ERRORS as error:
            if classify(error)[0] is Failure.CONFLICT:
                return False
            raise EventStoreError(f"cannot mark {stream_id} version {version} dispatched: {error}") from error
        return True

    def claim(self, stream_id: str, version: int, *, owner: str, lease_seconds: float) -> Flow[bool]:
        """Claim one undispatched event for ``owner`` until the lease ends; False when it cannot be claimed.

        One transaction: the claim holds only if the event is still undispatched and unclaimed (or
        its lease expired, or ``owner`` holds it), and the version before it is already dispatched,
        so two dispatchers keep each aggregate's events in order between them.
        """
        try:
            yield Call(
                "transact_write_items", {"TransactItems": self._claim_items(stream_id, version, owner, lease_seconds)}
            )
        except BOUNDARY_ERRORS as error:
            kind, reason = classify(error)
            if kind is Failure.TRANSIENT:
                message = "outbox: claim of %s v%d not made (%s); the next pass tries again"
                log.info(message, stream_id, version, reason, extra=log_fields(stream_id, version))
                return False
            if kind is Failure.CONFLICT:
                return False
            raise EventStoreError(f"cannot claim {stream_id} version {version}: {error}") from error
        return True

    def _claim_items(self, stream_id: str, version: int, owner: str, lease_seconds: float) -> list[dict[str, Any]]:
        attributes = self.model.get_attributes()
        now = time.time()
        update = {
            "TableName": self.table,
            "Key": self.codec.key(stream_id, version),
            "UpdateExpression": "SET #by = :owner, #until = :until",
            "ConditionExpression": "attribute_exists(#outbox) AND "
            "(attribute_not_exists(#until) OR #until < :now OR #by = :owner)",
            "ExpressionAttributeNames": {
                "#outbox": self.codec.outbox_attribute,
                "#by": attributes["claimed_by"].attr_name,
                "#until": attributes["claim_until"].attr_name,
            },
            "ExpressionAttributeValues": {
                ":owner": {"S": owner},
                ":until": {"N": repr(now + lease_seconds)},
                ":now": {"N": repr(now)},
            },
        }
        items: list[dict[str, Any]] = [{"Update": update}]
        if version > 1:
            previous = {
                "TableName": self.table,
                "Key": self.codec.key(stream_id, version - 1),
                "ConditionExpression": "attribute_not_exists(#outbox)",
                "ExpressionAttributeNames": {"#outbox": self.codec.outbox_attribute},
            }
            items.append({"ConditionCheck": previous})
        return items


@attrs.define
class OutboxReader:
    """Undispatched events, oldest first across the index partitions, read a page at a time when needed."""

    index: OutboxIndex
    page_size: int
    _buffers: list[deque[EncodedEvent]] = attrs.field(factory=list, init=False)
    _starts: list[dict[str, Any] | None] = attrs.field(factory=list, init=False)
    _heads: list[tuple[_OrderKey, int]] = attrs.field(factory=list, init=False)
    _primed: bool = attrs.field(default=False, init=False)

    def next(self) -> Flow[EncodedEvent | None]:
        """The next undispatched event in (timestamp, stream, version) order; None at the end."""
        if not self._primed:
            partitions = self.index.model.outbox_partitions
            self._buffers, self._starts = [deque() for _ in range(partitions)], [None] * partitions
            for partition in range(partitions):
                yield from self._fill(partition, first=True)
            self._primed = True
        if not self._heads:
            return None
        _, partition = heapq.heappop(self._heads)
        record = self._buffers[partition].popleft()
        yield from self._fill(partition)
        return record

    def _fill(self, partition: int, *, first: bool = False) -> Flow[None]:
        buffer = self._buffers[partition]
        while not buffer and (first or self._starts[partition]):
            page = yield from self.index.page(partition, self.page_size, self._starts[partition], ScanIndexForward=True)
            self._starts[partition] = page.get("LastEvaluatedKey")
            buffer.extend(self._decoded(page.get("Items", ())))
            first = False
        if buffer:
            heapq.heappush(self._heads, (_order(buffer[0]), partition))

    def _decoded(self, items: Any) -> list[EncodedEvent]:
        records = []
        for item in items:
            try:
                records.append(self.index.codec.decode(item))
            except CorruptItemError as error:  # one bad item must not stop the outbox
                log.error("outbox: skipping a corrupt item: %s", error)
        return records
