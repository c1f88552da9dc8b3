"""Every store passes the one contract suite: in memory, DynamoDB Local in both write modes, and the async stores."""

from __future__ import annotations

import attrs
import pytest

from dynamo_es import DynamoDBEventStore, EventSerializer, EventStore, EventStoreSettings, InMemoryEventStore
from dynamo_es.aio import AsyncEventStore, AsyncInMemoryEventStore
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.testing import (
    ArchivableStoreContract,
    AsyncEventStoreContract,
    DeletableStoreContract,
    EventStoreContract,
)


class TestInMemoryStore(EventStoreContract, DeletableStoreContract, ArchivableStoreContract):
    def create_store(self, serializer: EventSerializer) -> EventStore:
        return InMemoryEventStore(serializer)

    def create_archivable_store(self, serializer: EventSerializer) -> InMemoryEventStore:
        return InMemoryEventStore(serializer)

    def create_deletable_store(self, serializer: EventSerializer) -> InMemoryEventStore:
        return InMemoryEventStore(serializer)


class TestInMemoryStoreSmallBatches(EventStoreContract):
    def create_store(self, serializer: EventSerializer) -> EventStore:
        return InMemoryEventStore(serializer, max_batch_size=7)


@pytest.mark.ddblocal
class TestDynamoDBStore(EventStoreContract, DeletableStoreContract, ArchivableStoreContract):
    @pytest.fixture(autouse=True)
    def _table(self, events_table: EventStoreSettings) -> None:
        self.settings = events_table

    def create_store(self, serializer: EventSerializer) -> EventStore:
        return DynamoDBEventStore(self.settings, serializer=serializer)

    def create_deletable_store(self, serializer: EventSerializer) -> DynamoDBEventStore:
        return DynamoDBEventStore(self.settings, serializer=serializer)

    def create_archivable_store(self, serializer: EventSerializer) -> DynamoDBEventStore:
        return DynamoDBEventStore(self.settings, serializer=serializer)


@pytest.mark.ddblocal
class TestDynamoDBStoreSinglePuts(TestDynamoDBStore):
    def create_store(self, serializer: EventSerializer) -> EventStore:
        settings = attrs.evolve(self.settings, use_transactional_write=False)
        return DynamoDBEventStore(settings, serializer=serializer)


def test_stores_satisfy_the_protocol(events_table: EventStoreSettings) -> None:
    """Both stores are EventStores by the runtime-checkable protocol."""
    assert isinstance(InMemoryEventStore(), EventStore)
    assert isinstance(DynamoDBEventStore(events_table), EventStore)


class TestAsyncInMemoryStore(AsyncEventStoreContract):
    def create_async_store(self, serializer: EventSerializer) -> AsyncEventStore:
        return AsyncInMemoryEventStore(InMemoryEventStore(serializer))


@pytest.mark.ddblocal
class TestAsyncDynamoDBStore(AsyncEventStoreContract):
    @pytest.fixture(autouse=True)
    def _table(self, events_table: EventStoreSettings) -> None:
        self.settings = events_table

    def create_async_store(self, serializer: EventSerializer) -> AsyncEventStore:
        return AsyncDynamoDBEventStore(self.settings, serializer=serializer)
