"""The DynamoDB adapter's async stores (need the ``async`` extra: ``pip install "dynamo-es[async]"``)."""

import importlib.util

if importlib.util.find_spec("aiobotocore") is None:  # pragma: no cover (the dev install has it)
    raise ImportError('dynamo_es.dynamodb.aio needs aiobotocore: pip install "dynamo-es[async]"')

from ._async.checkpoints import AsyncDynamoDBCheckpointStore
from ._async.snapshots import AsyncDynamoDBSnapshotStore
from ._async.store import AsyncDynamoDBEventStore
from ._async.subscription import AsyncSubscription

__all__ = [
    "AsyncDynamoDBCheckpointStore",
    "AsyncDynamoDBEventStore",
    "AsyncDynamoDBSnapshotStore",
    "AsyncSubscription",
]
