"""The checkpoint protocol: where projections keep their stream position and applied versions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from ._changes import StreamPosition

__all__ = ["CheckpointStore"]


@runtime_checkable
class CheckpointStore(Protocol):
    """Saved progress of named subscribers: a stream position and the last version per stream."""

    def load_position(self, name: str) -> StreamPosition | None:
        """The position saved under ``name``, or None."""
        ...

    def save_position(self, name: str, position: StreamPosition) -> None:
        """Save ``position`` under ``name``."""
        ...

    def load_versions(self, name: str, stream_ids: Iterable[str]) -> dict[str, int]:
        """The last applied version of each of ``stream_ids`` that has one."""
        ...

    def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last applied version of each stream in ``versions``."""
        ...
