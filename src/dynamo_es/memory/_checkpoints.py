"""InMemoryCheckpointStore: checkpoints in a dict, for tests and single-process use."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import attrs

from ..projections._changes import StreamPosition

__all__ = ["InMemoryCheckpointStore"]


@attrs.define
class InMemoryCheckpointStore:
    """A :class:`CheckpointStore` in a dict, for tests."""

    _positions: dict[str, StreamPosition] = attrs.field(factory=dict, init=False)
    _versions: dict[tuple[str, str], int] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def load_position(self, name: str) -> StreamPosition | None:
        """The position saved under ``name``, or None."""
        with self._lock:
            return self._positions.get(name)

    def save_position(self, name: str, position: StreamPosition) -> None:
        """Save ``position`` under ``name``."""
        with self._lock:
            self._positions[name] = position

    def load_versions(self, name: str, stream_ids: Iterable[str]) -> dict[str, int]:
        """The last applied version of each of ``stream_ids`` that has one."""
        with self._lock:
            return {s: self._versions[(name, s)] for s in stream_ids if (name, s) in self._versions}

    def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last applied version of each stream in ``versions``."""
        with self._lock:
            self._versions.update({(name, s): v for s, v in versions.items()})
