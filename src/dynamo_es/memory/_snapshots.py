"""InMemorySnapshotStore: snapshots in a dict, for tests."""

from __future__ import annotations

import threading

import attrs

from ..ports.snapshots import Snapshot
from ..ports.store import check_version

__all__ = ["InMemorySnapshotStore"]


@attrs.define
class InMemorySnapshotStore:
    """A [`SnapshotStore`][dynamo_es.SnapshotStore] in a dict, for tests."""

    _snapshots: dict[tuple[str, str], dict[int, Snapshot]] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def load_latest(self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None) -> Snapshot | None:
        """The newest snapshot of the aggregate at or below ``max_version``, or None."""
        if max_version is not None:
            check_version("max_version", max_version)
        with self._lock:
            versions = self._snapshots.get((aggregate_type, aggregate_id), {})
            eligible = [v for v in versions if max_version is None or v <= max_version]
            return versions[max(eligible)] if eligible else None

    def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` (replacing one at the same version)."""
        with self._lock:
            key = (snapshot.aggregate_type, snapshot.aggregate_id)
            self._snapshots.setdefault(key, {})[snapshot.version] = snapshot

    def delete_snapshots(self, aggregate_type: str, aggregate_id: str) -> int:
        """Delete every snapshot of the aggregate; how many there were."""
        with self._lock:
            return len(self._snapshots.pop((aggregate_type, aggregate_id), {}))
