"""The PynamoDB model of an event item, built from the settings (key attribute names vary)."""

from __future__ import annotations

import functools
import zlib
from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from .._serialization import EncodedEvent
from ..settings import EventStoreSettings

__all__ = [
    "OUTBOX_ATTRIBUTE",
    "OUTBOX_INDEX",
    "EventItem",
    "encoded_from_raw",
    "event_model",
    "outbox_partition",
    "to_model",
]

OUTBOX_INDEX = "outbox"
"""The sparse global secondary index of undispatched events."""
OUTBOX_ATTRIBUTE = "outboxPending"
"""Present (the outbox partition) only while an event is undispatched: what makes the index sparse."""


class EventItem(Model):
    """The event item schema. Concrete models come from :func:`event_model`."""

    class Meta:
        abstract = True

    pk = UnicodeAttribute(hash_key=True)
    sk = NumberAttribute(range_key=True)
    event_id = UnicodeAttribute(attr_name="eventId")
    aggregate_id = UnicodeAttribute(attr_name="aggregateId")
    aggregate_type = UnicodeAttribute(attr_name="aggregateType")
    event_type = UnicodeAttribute(attr_name="eventType")
    version = NumberAttribute(attr_name="version")
    timestamp = UnicodeAttribute(attr_name="timestamp")
    event_data = UnicodeAttribute(attr_name="eventData")
    metadata = UnicodeAttribute(attr_name="metadata")
    is_dispatched = BooleanAttribute(attr_name="isDispatched", default=False)
    outbox_pending = UnicodeAttribute(attr_name=OUTBOX_ATTRIBUTE, null=True)
    outbox_partitions: int = 1


def _outbox_index(settings: EventStoreSettings) -> GlobalSecondaryIndex[Any]:
    """The outbox index: partition ``outboxPending``, sorted by ``timestamp``, all attributes."""
    meta: dict[str, Any] = {"index_name": OUTBOX_INDEX, "projection": AllProjection()}
    if not settings.use_on_demand_capacity:
        meta["read_capacity_units"] = settings.read_capacity_units
        meta["write_capacity_units"] = settings.write_capacity_units
    namespace: dict[str, Any] = {
        "Meta": type("Meta", (), meta),
        "outbox_pending": UnicodeAttribute(hash_key=True, attr_name=OUTBOX_ATTRIBUTE),
        "timestamp": UnicodeAttribute(range_key=True, attr_name="timestamp"),
        "__module__": __name__,
    }
    index_class = type("OutboxIndex", (GlobalSecondaryIndex,), namespace)
    return index_class()  # type: ignore[no-any-return]


def outbox_partition(stream_id: str, partitions: int) -> str:
    """The outbox partition of a stream: all its events share one, so their order is kept."""
    return str(zlib.crc32(stream_id.encode()) % partitions)


def table_meta(settings: EventStoreSettings, table_name: str, *, stream: bool = False) -> type:
    """A PynamoDB ``Meta`` class for one of the settings' tables: endpoint, credentials, capacity.

    With ``stream``, the table gets a NEW_AND_OLD_IMAGES stream.
    """
    options: dict[str, Any] = {
        "table_name": table_name,
        "region": settings.region,
        "host": settings.endpoint_url,
        "aws_access_key_id": settings.aws_access_key_id,
        "aws_secret_access_key": settings.aws_secret_access_key,
        "max_retry_attempts": 3,
        "billing_mode": "PAY_PER_REQUEST" if settings.use_on_demand_capacity else "PROVISIONED",
    }
    if not settings.use_on_demand_capacity:
        options["read_capacity_units"] = settings.read_capacity_units
        options["write_capacity_units"] = settings.write_capacity_units
    if stream:
        options["stream_view_type"] = "NEW_AND_OLD_IMAGES"
    return type("Meta", (), options)


@functools.cache
def event_model(settings: EventStoreSettings) -> type[EventItem]:
    """The :class:`EventItem` model for ``settings``' table and key attribute names."""
    namespace: dict[str, Any] = {
        "Meta": table_meta(settings, settings.events_table_name, stream=settings.enable_streams),
        "pk": UnicodeAttribute(hash_key=True, attr_name=settings.partition_key_attribute),
        "sk": NumberAttribute(range_key=True, attr_name=settings.sort_key_attribute),
        "outbox": _outbox_index(settings),
        "outbox_partitions": settings.outbox_partitions,
        "__module__": __name__,
    }
    return type(f"EventItem_{settings.events_table_name}", (EventItem,), namespace)


def to_model(model: type[EventItem], record: EncodedEvent) -> EventItem:
    """The model instance that stores ``record``."""
    return model(
        record.stream_id,
        record.version,
        event_id=record.event_id,
        aggregate_id=record.aggregate_id,
        aggregate_type=record.aggregate_type,
        event_type=record.event_type,
        version=record.version,
        timestamp=record.timestamp,
        event_data=record.event_data,
        metadata=record.metadata,
        is_dispatched=record.is_dispatched,
        outbox_pending=None if record.is_dispatched else outbox_partition(record.stream_id, model.outbox_partitions),
    )


def encoded_from_raw(item: dict[str, dict[str, Any]], partition_key: str) -> EncodedEvent:
    """A stored item in DynamoDB's wire format (a Query page or a stream image) as a record."""
    return EncodedEvent(
        stream_id=item[partition_key]["S"],
        aggregate_id=item["aggregateId"]["S"],
        aggregate_type=item["aggregateType"]["S"],
        version=int(item["version"]["N"]),
        event_id=item["eventId"]["S"],
        event_type=item["eventType"]["S"],
        timestamp=item["timestamp"]["S"],
        event_data=item["eventData"]["S"],
        metadata=item.get("metadata", {}).get("S", "{}"),
        is_dispatched=bool(item.get("isDispatched", {}).get("BOOL", False)),
    )
