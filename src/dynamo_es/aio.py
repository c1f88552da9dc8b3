"""The asyncio API: stores, repository, unit of work, outbox dispatcher and projection, with the sync semantics.

The DynamoDB store is [`dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore`][dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore]
(the ``async`` extra); aggregates stay synchronous.
"""

from .app._async.outbox import AsyncOutboxDispatcher
from .app._async.repository import AsyncRepository
from .app._async.unit import AsyncUnitOfWork
from .memory._aio_store import AsyncInMemoryEventStore
from .ports.checkpoints import AsyncCheckpointStore, AsyncTrackingStore
from .ports.lifecycle import AsyncArchivableStore, AsyncDeletableStore
from .ports.outbox import AsyncOutboxStore
from .ports.snapshots import AsyncSnapshotStore
from .ports.source import AsyncChangeFeed
from .ports.store import AsyncEventStore, AsyncReplayableStore
from .projections._async.process import AsyncPolicy, AsyncUnitCommits, async_process_manager
from .projections._async.projection import AsyncProjection

__all__ = [
    "AsyncArchivableStore",
    "AsyncChangeFeed",
    "AsyncCheckpointStore",
    "AsyncDeletableStore",
    "AsyncEventStore",
    "AsyncInMemoryEventStore",
    "AsyncOutboxDispatcher",
    "AsyncOutboxStore",
    "AsyncPolicy",
    "AsyncProjection",
    "AsyncReplayableStore",
    "AsyncRepository",
    "AsyncSnapshotStore",
    "AsyncTrackingStore",
    "AsyncUnitCommits",
    "AsyncUnitOfWork",
    "async_process_manager",
]
