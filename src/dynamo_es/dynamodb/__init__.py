"""The DynamoDB adapter: the PynamoDB event model, table provisioning, and the store."""

from ._model import EventItem, event_model
from ._snapshots import DynamoDBSnapshotStore
from ._store import DynamoDBEventStore
from ._table import ensure_table

__all__ = ["DynamoDBEventStore", "DynamoDBSnapshotStore", "EventItem", "ensure_table", "event_model"]
