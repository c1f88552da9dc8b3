"""dynamo-es: event-sourced, domain-driven aggregates stored in Amazon DynamoDB.

The everyday names live here. Errors are in [`dynamo_es.exceptions`][dynamo_es.exceptions], test helpers in
`dynamo_es.testing`; the adapters are `dynamo_es.memory` and `dynamo_es.dynamodb`,
the read side `dynamo_es.projections`.
"""

from ._aggregate import AggregateRoot, applies
from ._events import EventMetadata, EventRegistry, NewEvent, StoredEvent, event, event_type_of, upcaster
from ._outbox import DispatchReport, OutboxStore
from ._serialization import EncodedEvent, EventSerializer, RawEventSerializer, configure_converter, make_converter
from ._snapshots import EveryNEvents, Snapshot, SnapshotStore, SnapshotStrategy
from ._store import AppendResult, CommitResult, EventStore, StreamAppend, Tracking
from .app._sync.outbox import OutboxDispatcher
from .app._sync.repository import Repository
from .app._sync.unit import UnitOfWork
from .dynamodb import DynamoDBCheckpointStore, DynamoDBEventStore, DynamoDBSnapshotStore
from .exceptions import AggregateNotFoundError, ConcurrencyError, DynamoESError, EventStoreError
from .memory import InMemoryCheckpointStore, InMemoryEventStore, InMemorySnapshotStore
from .projections import (
    Change,
    ChangeKind,
    CheckpointStore,
    Projection,
    Selection,
    StreamPosition,
    handles,
    process_manager,
)
from .settings import EventStoreSettings

__all__ = [
    "AggregateNotFoundError",
    "AggregateRoot",
    "AppendResult",
    "Change",
    "ChangeKind",
    "CheckpointStore",
    "CommitResult",
    "ConcurrencyError",
    "DispatchReport",
    "DynamoDBCheckpointStore",
    "DynamoDBEventStore",
    "DynamoDBSnapshotStore",
    "DynamoESError",
    "EncodedEvent",
    "EventMetadata",
    "EventRegistry",
    "EventSerializer",
    "EventStore",
    "EventStoreError",
    "EventStoreSettings",
    "EveryNEvents",
    "InMemoryCheckpointStore",
    "InMemoryEventStore",
    "InMemorySnapshotStore",
    "NewEvent",
    "OutboxDispatcher",
    "OutboxStore",
    "Projection",
    "RawEventSerializer",
    "Repository",
    "Selection",
    "Snapshot",
    "SnapshotStore",
    "SnapshotStrategy",
    "StoredEvent",
    "StreamAppend",
    "StreamPosition",
    "Tracking",
    "UnitOfWork",
    "applies",
    "configure_converter",
    "event",
    "event_type_of",
    "handles",
    "make_converter",
    "process_manager",
    "upcaster",
]
