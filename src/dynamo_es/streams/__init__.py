"""DynamoDB Streams: subscriptions, positions, checkpoints, projections and the Lambda adapter."""

from ._changes import Change, ChangeKind, StreamPosition
from ._checkpoints import CheckpointStore, DynamoDBCheckpointStore, InMemoryCheckpointStore
from ._lambda import changes_from_lambda_event
from ._projection import Projection
from ._subscription import Subscription

__all__ = [
    "Change",
    "ChangeKind",
    "CheckpointStore",
    "DynamoDBCheckpointStore",
    "InMemoryCheckpointStore",
    "Projection",
    "StreamPosition",
    "Subscription",
    "changes_from_lambda_event",
]
