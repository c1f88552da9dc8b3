"""dynamo-es: event-sourced, domain-driven aggregates stored in Amazon DynamoDB."""

from ._aggregate import AggregateRoot, applies
from ._events import (
    EventMetadata,
    EventRegistry,
    NewEvent,
    StoredEvent,
    event,
    event_type_of,
    upcaster,
)
from ._memory import InMemoryEventStore
from ._repository import Repository
from ._serialization import EventSerializer, configure_converter, make_converter
from ._store import AppendResult, EventStore
from .dynamodb import DynamoDBEventStore
from .exceptions import (
    AggregateNotFoundError,
    ConcurrencyError,
    ConfigurationError,
    DuplicateEventTypeError,
    DynamoDBLocalError,
    DynamoESError,
    EventStoreError,
    EventTooLargeError,
    EventTypeError,
    InvalidStreamError,
    MissingHandlerError,
    SerializationError,
    TableSchemaError,
    TransientStoreError,
    UnknownEventTypeError,
)
from .settings import EventStoreSettings

__all__ = [
    "AggregateNotFoundError",
    "AggregateRoot",
    "AppendResult",
    "ConcurrencyError",
    "ConfigurationError",
    "DuplicateEventTypeError",
    "DynamoDBEventStore",
    "DynamoDBLocalError",
    "DynamoESError",
    "EventMetadata",
    "EventRegistry",
    "EventSerializer",
    "EventStore",
    "EventStoreError",
    "EventStoreSettings",
    "EventTooLargeError",
    "EventTypeError",
    "InMemoryEventStore",
    "InvalidStreamError",
    "MissingHandlerError",
    "NewEvent",
    "Repository",
    "SerializationError",
    "StoredEvent",
    "TableSchemaError",
    "TransientStoreError",
    "UnknownEventTypeError",
    "applies",
    "configure_converter",
    "event",
    "event_type_of",
    "make_converter",
    "upcaster",
]
