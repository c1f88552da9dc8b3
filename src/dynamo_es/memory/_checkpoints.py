"""InMemoryCheckpointStore: checkpoints in a dict, for tests and single-process use."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import attrs

from ..core.changes import StreamPosition
from ..ports.checkpoints import StreamProgress, later_position
from ..ports.store import Tracking

__all__ = ["InMemoryCheckpointStore"]

T = TypeVar("T")


@attrs.define
class InMemoryCheckpointStore:
    """A [`CheckpointStore`][dynamo_es.CheckpointStore] in a dict, monotonic like the DynamoDB one."""

    _positions: dict[str, StreamPosition] = attrs.field(factory=dict, init=False)
    _progress: dict[tuple[str, str], StreamProgress] = attrs.field(factory=dict, init=False)
    _failed_versions: dict[tuple[str, str], int] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def load_position(self, name: str) -> StreamPosition | None:
        """The position saved under ``name``, or None."""
        with self._lock:
            return self._positions.get(name)

    def save_position(self, name: str, position: StreamPosition) -> None:
        """Move each shard of ``name``'s position forward to ``position``'s; never back."""
        with self._lock:
            self._positions[name] = later_position(self._positions.get(name), position)

    def load_progress(self, name: str, stream_ids: Iterable[str]) -> dict[str, StreamProgress]:
        """The progress of each of ``stream_ids`` that has any."""
        with self._lock:
            return {s: self._progress[(name, s)] for s in stream_ids if (name, s) in self._progress}

    def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last applied version per stream, where it is newer; clears failures."""
        with self._lock:
            for stream_id, version in versions.items():
                current = self._progress.get((name, stream_id), StreamProgress())
                if version > current.version:
                    self._progress[(name, stream_id)] = StreamProgress(version, parked=current.parked)

    def record_failure(self, name: str, stream_id: str, version: int, error: str, *, park_after: int | None) -> int:
        """Count a failed attempt at ``version``; park the stream once the count reaches ``park_after``."""
        key = (name, stream_id)
        with self._lock:
            current = self._progress.get(key, StreamProgress())
            if version <= current.version:
                return 0  # applied meanwhile (by another worker): nothing to count
            same = self._failed_versions.get(key) == version
            failures = current.failures + 1 if same else 1
            self._failed_versions[key] = version
            parked = current.parked or (park_after is not None and failures >= park_after)
            self._progress[key] = attrs.evolve(current, failures=failures, parked=parked, error=error)
            return failures

    def parked(self, name: str) -> dict[str, StreamProgress]:
        """The parked streams of ``name``."""
        with self._lock:
            return {s: p for (n, s), p in self._progress.items() if n == name and p.parked}

    def unpark(self, name: str, stream_id: str) -> None:
        """Let ``stream_id`` be applied again; its failure count restarts."""
        with self._lock:
            current = self._progress.get((name, stream_id), StreamProgress())
            self._progress[(name, stream_id)] = StreamProgress(current.version)
            self._failed_versions.pop((name, stream_id), None)

    def record_tracking(self, tracking: Tracking, commit: Callable[[], T], *, done: Callable[[T], bool]) -> T | None:
        """Run ``commit`` and record ``tracking`` as one step; None (nothing run) when it is recorded already.

        The tracking version is saved only when ``done(result)`` says the commit succeeded.
        """
        key = (tracking.name, tracking.stream_id)
        with self._lock:
            current = self._progress.get(key, StreamProgress())
            if current.version >= tracking.version:
                return None
            result = commit()
            if done(result):
                self._progress[key] = StreamProgress(tracking.version, parked=current.parked)
                self._failed_versions.pop(key, None)
            return result
