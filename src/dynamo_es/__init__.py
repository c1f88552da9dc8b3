"""dynamo-es: event-sourced, domain-driven aggregates stored in Amazon DynamoDB.

The everyday names live here. Errors are in [`dynamo_es.exceptions`][dynamo_es.exceptions], test helpers in
`dynamo_es.testing`; the adapters are `dynamo_es.memory` and `dynamo_es.dynamodb`,
the read side `dynamo_es.projections`.
"""

from .app._sync.outbox import OutboxDispatcher
from .app._sync.repository import Repository
from .app._sync.unit import UnitOfWork
from .core.serialization import EncodedEvent, EventSerializer, RawEventSerializer, configure_converter, make_converter
from .domain.aggregate import AggregateRoot, applies
from .domain.events import (
    EventHistory,
    EventMetadata,
    EventRegistry,
    NewEvent,
    StoredEvent,
    event,
    event_type_of,
    upcaster,
)
from .domain.lifecycle import StreamDeleted, StreamTruncated, SubjectForgotten
from .domain.personal import personal, subject
from .dynamodb import DynamoDBCheckpointStore, DynamoDBEventStore, DynamoDBSnapshotStore
from .exceptions import AggregateNotFoundError, ConcurrencyError, DynamoESError, EventStoreError
from .memory import InMemoryCheckpointStore, InMemoryEventStore, InMemorySnapshotStore
from .ports.lifecycle import ArchivableStore, DeletableStore, StreamArchival, StreamDeletion, StreamTruncation
from .ports.outbox import DispatchReport, OutboxStore
from .ports.snapshots import EveryNEvents, Snapshot, SnapshotStore, SnapshotStrategy
from .ports.store import AppendResult, CommitResult, EventStore, ReplayableStore, StreamAppend, Tracking
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
    "ArchivableStore",
    "Change",
    "ChangeKind",
    "CheckpointStore",
    "CommitResult",
    "ConcurrencyError",
    "DeletableStore",
    "DispatchReport",
    "DynamoDBCheckpointStore",
    "DynamoDBEventStore",
    "DynamoDBSnapshotStore",
    "DynamoESError",
    "EncodedEvent",
    "EventHistory",
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
    "ReplayableStore",
    "Repository",
    "Selection",
    "Snapshot",
    "SnapshotStore",
    "SnapshotStrategy",
    "StoredEvent",
    "StreamAppend",
    "StreamArchival",
    "StreamDeleted",
    "StreamDeletion",
    "StreamPosition",
    "StreamTruncated",
    "StreamTruncation",
    "SubjectForgotten",
    "Tracking",
    "UnitOfWork",
    "applies",
    "configure_converter",
    "event",
    "event_type_of",
    "handles",
    "make_converter",
    "personal",
    "process_manager",
    "subject",
    "upcaster",
]
