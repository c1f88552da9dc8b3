"""The DynamoDB adapter's async stores (need the ``async`` extra: ``pip install "dynamo-es[async]"``)."""

import importlib.util

if importlib.util.find_spec("aiobotocore") is None:  # pragma: no cover (the dev install has it)
    raise ImportError('dynamo_es.dynamodb.aio needs aiobotocore: pip install "dynamo-es[async]"')

from ._aio_checkpoints import AsyncDynamoDBCheckpointStore
from ._aio_store import AsyncDynamoDBEventStore
from ._aio_streams import AsyncSubscription
from ._async.snapshots import AsyncDynamoDBSnapshotStore

__all__ = [
    "AsyncDynamoDBCheckpointStore",
    "AsyncDynamoDBEventStore",
    "AsyncDynamoDBSnapshotStore",
    "AsyncSubscription",
]
