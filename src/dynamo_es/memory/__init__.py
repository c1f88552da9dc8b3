"""The in-memory adapter: the reference stores and a subscription to their appends, for unit tests."""

from ._checkpoints import InMemoryCheckpointStore
from ._snapshots import InMemorySnapshotStore
from ._store import InMemoryEventStore
from ._sync.subscription import MemorySubscription

__all__ = ["InMemoryCheckpointStore", "InMemoryEventStore", "InMemorySnapshotStore", "MemorySubscription"]
