"""The in-memory adapter: the reference stores, for unit tests and single-process use."""

from ._checkpoints import InMemoryCheckpointStore
from ._snapshots import InMemorySnapshotStore
from ._store import InMemoryEventStore

__all__ = ["InMemoryCheckpointStore", "InMemoryEventStore", "InMemorySnapshotStore"]
