"""The asyncio API: async stores, repository and unit of work with the sync API's semantics.

The DynamoDB store is [`dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore`][dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore]
(the ``async`` extra); aggregates stay synchronous.
"""

from ._aio import AsyncEventStore, AsyncRepository, AsyncSnapshotStore, AsyncUnitOfWork
from ._aio_outbox import AsyncOutboxDispatcher, AsyncOutboxStore
from .memory._aio import AsyncInMemoryEventStore

__all__ = [
    "AsyncEventStore",
    "AsyncInMemoryEventStore",
    "AsyncOutboxDispatcher",
    "AsyncOutboxStore",
    "AsyncRepository",
    "AsyncSnapshotStore",
    "AsyncUnitOfWork",
]
