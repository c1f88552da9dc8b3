"""The PynamoDB model of an event item, built from the settings (key attribute names vary)."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
from pynamodb.attributes import Attribute, BooleanAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from ...core.serialization import EncodedEvent
from ...core.structuring import positional_builder
from ...domain.lifecycle import STREAM_ARCHIVED, STREAM_DELETED, STREAM_MARKS
from ...exceptions import CorruptItemError
from ...settings import EventStoreSettings
from ..wire.credentials import credentials_for

__all__ = [
    "OUTBOX_ATTRIBUTE",
    "OUTBOX_INDEX",
    "EventItem",
    "EventItemCodec",
    "archive_model",
    "event_model",
    "outbox_partition",
    "table_meta",
]

OUTBOX_INDEX = "outbox"
"""The sparse global secondary index of undispatched events."""
OUTBOX_ATTRIBUTE = "outboxPending"
"""Present (the outbox partition) only while an event is undispatched: what makes the index sparse."""


class EventItem(Model):
    """The event item schema. Concrete models come from `event_model()`."""

    class Meta:  # noqa: D106  # PynamoDB's model options
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
    metadata = UnicodeAttribute(attr_name="metadata", default="{}")
    is_dispatched = BooleanAttribute(attr_name="isDispatched", default=False)
    outbox_pending = UnicodeAttribute(attr_name=OUTBOX_ATTRIBUTE, null=True)
    claimed_by = UnicodeAttribute(attr_name="claimedBy", null=True)
    """The outbox dispatcher publishing this event, while its lease lasts."""
    claim_until = NumberAttribute(attr_name="claimUntil", null=True)
    """When that dispatcher's lease ends (epoch seconds); after it another may take over."""
    expires_at = TTLAttribute(attr_name="expiresAt", null=True)
    """A temporary stream's expiry (epoch seconds), the table's TTL attribute (``ttl_attribute``)."""
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
        "aws_access_key_id": credentials_for(settings)[0],
        "aws_secret_access_key": credentials_for(settings)[1],
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
    """The `EventItem` model for ``settings``' table and key attribute names."""
    namespace: dict[str, Any] = {
        "Meta": table_meta(settings, settings.events_table_name, stream=settings.enable_streams),
        "pk": UnicodeAttribute(hash_key=True, attr_name=settings.partition_key_attribute),
        "sk": NumberAttribute(range_key=True, attr_name=settings.sort_key_attribute),
        "outbox": _outbox_index(settings),
        "expires_at": TTLAttribute(attr_name=settings.ttl_attribute, null=True),
        "outbox_partitions": settings.outbox_partitions,
        "__module__": __name__,
    }
    return type(f"EventItem_{settings.events_table_name}", (EventItem,), namespace)


def archive_model(settings: EventStoreSettings) -> type[EventItem]:
    """The events model on ``settings.archive_table_name``: the same schema, without a stream."""
    archive = attrs.evolve(settings, events_table_name=settings.archive_table_name, enable_streams=False)
    return event_model(archive)


_KEY_FIELDS = {"pk": "stream_id", "sk": "version"}
"""Model attributes whose EncodedEvent field has another name; every other attribute shares its name."""
_MISSING = object()
_PYTHON_TYPES = {"S": str, "BOOL": bool}


@attrs.frozen
class _Field:
    """One model attribute as the codec reads it: where it sits in EncodedEvent and on the wire."""

    field: str
    attr_name: str
    attr_type: str
    default: Any


_build_encoded = positional_builder(EncodedEvent)


def _fields(model: type[EventItem]) -> tuple[_Field, ...]:
    fields = []
    names = set(attrs.fields_dict(EncodedEvent))
    for name, attribute in model.get_attributes().items():
        field = _KEY_FIELDS.get(name, name)
        if field in names and name != "version":  # the version attribute is checked against the sort key
            fields.append(_Field(field, attribute.attr_name, attribute.attr_type, _default_of(attribute)))
    return tuple(fields)


def _default_of(attribute: Attribute[Any]) -> Any:
    default = attribute.default
    if default is None:
        return None if attribute.null else _MISSING
    return default() if callable(default) else default


@attrs.define
class EventItemCodec:
    """Event items in DynamoDB's wire format, read by the rules of the PynamoDB model.

    Attribute names, types and defaults all come from ``model``'s attribute definitions;
    nothing here repeats them. ``version`` is stored twice (sort key and attribute); an item
    where the two disagree is corrupt.
    """

    model: type[EventItem]
    _fields: tuple[_Field, ...] = attrs.field(init=False, repr=False)
    _plan: tuple[tuple[str, str, Any], ...] = attrs.field(init=False, repr=False)
    _version_attr: str = attrs.field(init=False, repr=False)
    _event_id_attr: str = attrs.field(init=False, repr=False)
    _marks: tuple[tuple[str, str], ...] = attrs.field(init=False, repr=False)

    partition_key: str = attrs.field(init=False)
    """The partition key's attribute name."""
    sort_key: str = attrs.field(init=False)
    """The sort key's attribute name."""
    outbox_attribute: str = attrs.field(init=False)
    """The outbox index's partition attribute (present only while an event is undispatched)."""
    aggregate_type_attribute: str = attrs.field(init=False)
    """The attribute holding the aggregate type (what a Scan filter of a selection tests)."""
    event_type_attribute: str = attrs.field(init=False)
    """The attribute holding the event type (a deleted stream's marks are ``$StreamDeleted``)."""

    def __attrs_post_init__(self) -> None:
        self._fields = _fields(self.model)
        order = {name: n for n, name in enumerate(attrs.fields_dict(EncodedEvent))}
        specs = sorted(self._fields, key=lambda spec: order[spec.field])  # EncodedEvent's order: built positionally
        if [spec.field for spec in specs] != list(order):
            raise TypeError(f"{self.model.__name__} does not hold every field of an EncodedEvent")
        self._plan = tuple((spec.attr_name, spec.attr_type, spec.default) for spec in specs)
        attributes = self.model.get_attributes()
        self._version_attr = attributes["version"].attr_name
        self._event_id_attr = attributes["event_id"].attr_name
        self.outbox_attribute = attributes["outbox_pending"].attr_name
        self.aggregate_type_attribute = attributes["aggregate_type"].attr_name
        self.event_type_attribute = attributes["event_type"].attr_name
        self._marks = tuple((attributes[name].attr_name, attributes[name].attr_type) for name in ("sk", "event_type"))
        self.partition_key, self.sort_key = attributes["pk"].attr_name, attributes["sk"].attr_name

    def encode(self, record: EncodedEvent) -> dict[str, dict[str, Any]]:
        """``record`` as an item in DynamoDB's wire format (undispatched events join the outbox)."""
        item: dict[str, dict[str, Any]] = {}
        for spec in self._fields:
            value = getattr(record, spec.field)
            if value is not None:  # a null attribute (no expiry) is left out
                item[spec.attr_name] = {spec.attr_type: str(value) if spec.attr_type == "N" else value}
        item[self._version_attr] = {"N": str(record.version)}
        if not record.is_dispatched:
            item[self.outbox_attribute] = {"S": outbox_partition(record.stream_id, self.model.outbox_partitions)}
        return item

    @property
    def event_id_attribute(self) -> str:
        """The attribute holding the event id."""
        return self._event_id_attr

    def event_id_of(self, item: Mapping[str, Mapping[str, Any]]) -> str:
        """The event id in ``item``, or "" when it has none (a foreign or corrupt item holds that slot)."""
        wire = item.get(self._event_id_attr)
        value = wire.get("S") if isinstance(wire, Mapping) else None
        return value if isinstance(value, str) else ""

    def sort_key_of(self, item: Mapping[str, Mapping[str, Any]]) -> int:
        """The version in ``item``'s sort key.

        Raises:
            SerializationError: the sort key is missing or not an integer.
        """
        wire = item.get(self.sort_key)
        if not isinstance(wire, Mapping) or "N" not in wire:
            raise _corrupt(item, self._fields, self.sort_key, f"sort key {self.sort_key!r} is not a number")
        return _integer(wire["N"], item, self._fields, self.sort_key)

    def is_deletion_mark(self, item: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether ``item`` is one of a deleted stream's marks (`StreamDeleted`)."""
        return self.event_type_of(item) == STREAM_DELETED

    def is_archive_mark(self, item: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether ``item`` is one of an archived stream's marks (`StreamArchived`)."""
        return self.event_type_of(item) == STREAM_ARCHIVED

    def is_mark(self, item: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether ``item`` is a store's mark (`StreamDeleted`, `StreamTruncated`, `StreamArchived`), not an event."""
        return self.event_type_of(item) in STREAM_MARKS

    def event_type_of(self, item: Mapping[str, Mapping[str, Any]]) -> str | None:
        """The event type in ``item``, or None when it has none (the item need not decode)."""
        wire = item.get(self.event_type_attribute)
        value = wire.get("S") if isinstance(wire, Mapping) else None
        return value if isinstance(value, str) else None

    def key(self, stream_id: str, version: int) -> dict[str, dict[str, str]]:
        """The primary key of one event item, in wire format."""
        return {self.partition_key: {"S": stream_id}, self.sort_key: {"N": str(version)}}

    def is_event(self, item: Mapping[str, Mapping[str, Any]]) -> bool:
        """Whether ``item`` is an event at all: a numeric sort key and an event type.

        Other items (other entity types in a single-table design) are not events, and not
        corrupt events either; readers skip them.
        """
        return all(isinstance(item.get(name), Mapping) and kind in item[name] for name, kind in self._marks)

    def decode(self, item: Mapping[str, Mapping[str, Any]]) -> EncodedEvent:
        """The record stored in ``item`` (a Query page item or a stream image).

        Raises:
            SerializationError: an attribute is missing, of the wrong type, or the version
                disagrees with the sort key; the error names the stream, version and attribute.
        """
        try:
            return self._decode_well_formed(item)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # something is off: the careful path below says exactly what
        values = {spec.field: self._value(item, spec) for spec in self._fields}
        version = values["version"]
        stored = self._value(item, _Field("version", self._version_attr, "N", _MISSING))
        if stored != version:
            reason = f"attribute {self._version_attr!r} is {stored}, sort key {version}"
            raise _corrupt(item, self._fields, self._version_attr, reason)
        return EncodedEvent(**values)

    def _decode_well_formed(self, item: Mapping[str, Mapping[str, Any]]) -> EncodedEvent:
        """The fast path: every attribute present with its type; raises on anything else."""
        values: list[Any] = []
        append = values.append
        for name, kind, default in self._plan:
            wire = item.get(name)
            if wire is None:
                if default is _MISSING:
                    raise KeyError(name)
                append(default)
            elif kind == "N":
                append(int(wire["N"]))
            else:
                value = wire[kind]
                if value.__class__ is not _PYTHON_TYPES[kind]:
                    raise TypeError(name)
                append(value)
        encoded = _build_encoded(*values)
        if int(item[self._version_attr]["N"]) != encoded.version:
            raise ValueError(self._version_attr)
        return encoded

    def _value(self, item: Mapping[str, Mapping[str, Any]], spec: _Field) -> Any:
        wire = item.get(spec.attr_name)
        if wire is None:
            if spec.default is _MISSING:
                raise _corrupt(item, self._fields, spec.attr_name, f"attribute {spec.attr_name!r} is missing")
            return spec.default
        value = wire.get(spec.attr_type) if isinstance(wire, Mapping) else None
        if value is None:
            reason = f"attribute {spec.attr_name!r} is not of type {spec.attr_type}"
            raise _corrupt(item, self._fields, spec.attr_name, reason)
        if spec.attr_type == "N":
            return _integer(value, item, self._fields, spec.attr_name)
        return value

    def size(self, record: EncodedEvent) -> int:
        """The size DynamoDB counts for ``record`` as an item: attribute names plus values."""
        total = 0
        if not record.is_dispatched:
            total += len(OUTBOX_ATTRIBUTE) + len(outbox_partition(record.stream_id, self.model.outbox_partitions))
        for spec in self._fields:
            value = getattr(record, spec.field)
            if value is not None:
                total += len(spec.attr_name) + _value_size(spec.attr_type, value)
        return total + len(self._version_attr) + _value_size("N", record.version)

    def to_model(self, record: EncodedEvent) -> EventItem:
        """The model instance that stores ``record`` (undispatched events join the outbox)."""
        values = {name: getattr(record, _KEY_FIELDS.get(name, name)) for name in self._model_names()}
        if record.expires_at is not None:
            values["expires_at"] = datetime.fromtimestamp(record.expires_at, tz=UTC)
        pending = None if record.is_dispatched else outbox_partition(record.stream_id, self.model.outbox_partitions)
        return self.model(**values, outbox_pending=pending)

    def _model_names(self) -> list[str]:
        reverse = {field: name for name, field in _KEY_FIELDS.items()}
        return [reverse.get(spec.field, spec.field) for spec in self._fields] + ["version"]


def _value_size(attr_type: str, value: Any) -> int:
    if attr_type == "N":
        return len(str(value)) // 2 + 2
    if attr_type == "BOOL":
        return 1
    return len(value) if value.isascii() else len(value.encode())


def _integer(value: Any, item: Mapping[str, Mapping[str, Any]], fields: tuple[_Field, ...], attr_name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _corrupt(item, fields, attr_name, f"attribute {attr_name!r} is not an integer: {value!r}") from None


def _corrupt(
    item: Mapping[str, Mapping[str, Any]], fields: tuple[_Field, ...], attribute: str, reason: str
) -> CorruptItemError:
    """An error naming the item's stream, sort key, event type and the bad attribute, as far as readable."""
    found = {spec.field: _peek(item, spec.attr_name) for spec in fields}
    version = found.get("version")
    return CorruptItemError(
        f"corrupt event item: {reason}",
        stream_id=str(found.get("stream_id") or "<no partition key>"),
        version=int(version) if isinstance(version, str) and version.isascii() and version.isdigit() else -1,
        event_type=str(found.get("event_type") or "<no event type>"),
        attribute=attribute,
    )


def _peek(item: Mapping[str, Any], attr_name: str) -> Any:
    wire = item.get(attr_name)
    if isinstance(wire, Mapping):
        return next(iter(wire.values()), None)
    return None
