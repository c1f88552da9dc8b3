"""The DynamoDB adapter: PynamoDB models, tables, the stores, DynamoDB Streams and AWS Lambda."""

from ._keys import DynamoDBKeyStore
from ._lambda import LambdaBatch, changes_from_lambda_event, lambda_handler, partial_batch_response, read_lambda_event
from ._status import OutboxStatus, ProjectionStatus, SystemStatus, read_status
from ._sync.checkpoints import DynamoDBCheckpointStore
from ._sync.snapshots import DynamoDBSnapshotStore
from ._sync.store import DynamoDBEventStore
from ._sync.subscription import Subscription
from .flows.read_models import ConditionCheck, DeleteItem, PutItem, ReadModelWrite, UpdateItem
from .schema.model import EventItem, EventItemCodec, event_model, table_meta
from .schema.table import ensure_table

__all__ = [
    "ConditionCheck",
    "DeleteItem",
    "DynamoDBCheckpointStore",
    "DynamoDBEventStore",
    "DynamoDBKeyStore",
    "DynamoDBSnapshotStore",
    "EventItem",
    "EventItemCodec",
    "LambdaBatch",
    "OutboxStatus",
    "ProjectionStatus",
    "PutItem",
    "ReadModelWrite",
    "Subscription",
    "SystemStatus",
    "UpdateItem",
    "changes_from_lambda_event",
    "ensure_table",
    "event_model",
    "lambda_handler",
    "partial_batch_response",
    "read_lambda_event",
    "read_status",
    "table_meta",
]
