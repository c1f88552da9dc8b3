"""The asyncio API: stores, repository, unit of work, outbox dispatcher and projection, with the sync semantics.

The DynamoDB store is [`dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore`][dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore]
(the ``async`` extra); aggregates stay synchronous.
"""

from ._aio import AsyncEventStore, AsyncRepository, AsyncSnapshotStore, AsyncUnitOfWork
from ._aio_outbox import AsyncOutboxDispatcher, AsyncOutboxStore
from .memory._aio import AsyncInMemoryEventStore
from .projections._aio_process import AsyncPolicy, AsyncTrackingStore, AsyncUnitCommits, async_process_manager
from .projections._aio_projection import AsyncChangeFeed, AsyncCheckpointStore, AsyncProjection

__all__ = [
    "AsyncChangeFeed",
    "AsyncCheckpointStore",
    "AsyncEventStore",
    "AsyncInMemoryEventStore",
    "AsyncOutboxDispatcher",
    "AsyncOutboxStore",
    "AsyncPolicy",
    "AsyncProjection",
    "AsyncRepository",
    "AsyncSnapshotStore",
    "AsyncTrackingStore",
    "AsyncUnitCommits",
    "AsyncUnitOfWork",
    "async_process_manager",
]
