"""The DynamoDB adapter: PynamoDB models, tables, the stores, DynamoDB Streams and AWS Lambda."""

from ._checkpoints import DynamoDBCheckpointStore
from ._lambda import changes_from_lambda_event
from ._model import EventItem, EventItemCodec, event_model
from ._snapshots import DynamoDBSnapshotStore
from ._store import DynamoDBEventStore
from ._streams import Subscription
from ._table import ensure_table

__all__ = [
    "DynamoDBCheckpointStore",
    "DynamoDBEventStore",
    "DynamoDBSnapshotStore",
    "EventItem",
    "EventItemCodec",
    "Subscription",
    "changes_from_lambda_event",
    "ensure_table",
    "event_model",
]
