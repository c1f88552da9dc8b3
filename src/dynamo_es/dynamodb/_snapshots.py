"""DynamoDBSnapshotStore: snapshots in a table of their own, keyed like the event streams."""

from __future__ import annotations

import functools
from typing import Any

import attrs
import cattrs
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from ..core.serialization import default_converter
from ..exceptions import EventStoreError, SnapshotError
from ..ports.snapshots import Snapshot
from ..ports.store import check_version, make_stream_id
from ..settings import EventStoreSettings
from .flows.base import Call, Flow, drive
from .flows.errors import BOUNDARY_ERRORS
from .schema.limits import MAX_ITEM_BYTES
from .schema.model import table_meta
from .schema.table import LazyTable
from .wire.client import make_client

__all__ = ["DynamoDBSnapshotStore", "SnapshotItem", "check_snapshot", "load_latest_flow", "save_flow"]


class SnapshotItem(Model):
    """A snapshot row: ``pk`` = stream id, ``sk`` = the version the state is at."""

    class Meta:
        abstract = True

    stream_id = UnicodeAttribute(hash_key=True, attr_name="pk")
    version = NumberAttribute(range_key=True, attr_name="sk")
    aggregate_type = UnicodeAttribute(attr_name="aggregateType")
    aggregate_id = UnicodeAttribute(attr_name="aggregateId")
    schema_version = NumberAttribute(attr_name="schemaVersion")
    state = UnicodeAttribute(attr_name="state")
    taken_at = UnicodeAttribute(attr_name="takenAt")


@functools.cache
def snapshot_model(settings: EventStoreSettings) -> type[SnapshotItem]:
    """The `SnapshotItem` model on ``settings.snapshots_table_name``."""
    namespace = {"Meta": table_meta(settings, settings.snapshots_table_name), "__module__": __name__}
    return type(f"SnapshotItem_{settings.snapshots_table_name}", (SnapshotItem,), namespace)


@attrs.define
class DynamoDBSnapshotStore:
    """A [`SnapshotStore`][dynamo_es.SnapshotStore] in ``snapshots_table_name`` (``pk`` S, ``sk`` N; no stream).

    Snapshots stay out of the events table, so its items, its stream and its outbox index
    hold events only. Every snapshot is kept (time travel can start from an older one).
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[SnapshotItem] = attrs.field(init=False, repr=False)
    _client: Any = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._table = LazyTable(snapshot_model(self.settings), self.settings.create_table_if_not_exists)
        self._client = make_client(self.settings)

    def ensure_table(self) -> dict[str, Any]:
        """Check the snapshots table, creating it if missing and allowed."""
        return self._table.ensure()

    def load_latest(self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None) -> Snapshot | None:
        """The newest snapshot of the aggregate at or below ``max_version``, or None."""
        flow = load_latest_flow(self.settings, aggregate_type, aggregate_id, max_version)
        make_stream_id(aggregate_type, aggregate_id)  # bad input raises before the table check
        self._table.ready()
        return drive(flow, self._client)

    def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` (replacing one at the same version).

        Raises:
            SnapshotError: the state would make an item over DynamoDB's 400 KB.
        """
        flow = save_flow(self.settings, snapshot)
        check_snapshot(snapshot)
        self._table.ready()
        drive(flow, self._client)


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
