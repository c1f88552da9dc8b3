"""The checkpoint protocol: a projection's stream position, and its progress per event stream."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

from ..core.changes import SHARD_END, StreamPosition
from ..domain.events import StoredEvent
from .store import AsyncEventStore, EventStore

__all__ = [
    "AsyncCheckpointStore",
    "AsyncEffectSink",
    "AsyncTrackingStore",
    "CheckpointStore",
    "EffectSink",
    "EitherCheckpointStore",
    "EitherEffectSink",
    "StreamProgress",
    "TrackingStore",
    "later_position",
]


@attrs.frozen
class StreamProgress:
    """How far one projection got with one event stream.

    Attributes:
        version: the last version applied (0: none yet).
        failures: failed attempts at the next version since the last success.
        parked: the next version and everything after it are parked (a poison event); the
            stream is skipped until `unpark()`.
        error: the last failure, as text.
    """

    version: int = 0
    failures: int = 0
    parked: bool = False
    error: str | None = None


@runtime_checkable
class CheckpointStore(Protocol):
    """Saved progress of named projections. Every write is monotonic: nothing moves back.

    Two workers running the same projection at once cannot regress each other: a position or
    version older than the stored one is ignored, not written.
    """

    def load_position(self, name: str) -> StreamPosition | None:
        """The position saved under ``name``, or None."""
        ...

    def save_position(self, name: str, position: StreamPosition) -> None:
        """Move each shard of ``name``'s position forward to ``position``'s; never back."""
        ...

    def load_progress(self, name: str, stream_ids: Iterable[str]) -> dict[str, StreamProgress]:
        """The progress of each of ``stream_ids`` that has any."""
        ...

    def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last applied version per stream, where it is newer; clears failures."""
        ...

    def record_failure(self, name: str, stream_id: str, version: int, error: str, *, park_after: int | None) -> int:
        """Count a failed attempt at ``version`` (the next after the last applied); return the count.

        With ``park_after``, the stream is parked once the count reaches it.
        """
        ...

    def parked(self, name: str) -> dict[str, StreamProgress]:
        """The parked streams of ``name``."""
        ...

    def unpark(self, name: str, stream_id: str) -> None:
        """Let ``stream_id`` be applied again (after a fix); its failure count restarts."""
        ...


class AsyncCheckpointStore(Protocol):
    """[`CheckpointStore`][dynamo_es.CheckpointStore] with awaitable methods."""

    async def load_position(self, name: str) -> StreamPosition | None:
        """The saved stream position, or None."""
        ...

    async def save_position(self, name: str, position: StreamPosition) -> None:
        """Save the position (never moving a shard backwards)."""
        ...

    async def load_progress(self, name: str, stream_ids: Iterable[str]) -> dict[str, StreamProgress]:
        """The progress with each of ``stream_ids`` that has any."""
        ...

    async def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last version applied per stream (never moving one backwards)."""
        ...

    async def record_failure(
        self, name: str, stream_id: str, version: int, error: str, *, park_after: int | None
    ) -> int:
        """Count a failure of ``version``; the count (0 when it was applied meanwhile)."""
        ...

    async def parked(self, name: str) -> dict[str, StreamProgress]:
        """The parked streams."""
        ...

    async def unpark(self, name: str, stream_id: str) -> None:
        """Let a parked stream be applied again."""
        ...


@runtime_checkable
class EffectSink(Protocol):
    """Applies what a handler returned together with the record that its event was applied: atomically."""

    def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Apply ``effects`` and record ``event``'s version as applied by ``name``, in one transaction.

        Returns False, applying nothing, when that version (or a later one) is recorded already.
        """
        ...


class AsyncEffectSink(Protocol):
    """[`EffectSink`][dynamo_es.projections.EffectSink] with an awaitable ``commit_effects``."""

    async def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Apply ``effects`` and record ``event``'s version as applied, in one transaction; False if recorded."""
        ...


EitherCheckpointStore = CheckpointStore | AsyncCheckpointStore
"""What an async projection takes as checkpoints: either kind (an in-memory store is sync)."""
EitherEffectSink = EffectSink | AsyncEffectSink
"""What an async projection takes as effects: either kind."""


def later_position(stored: StreamPosition | None, new: StreamPosition) -> StreamPosition:
    """``stored`` with each shard moved forward to ``new``'s sequence number, never back."""
    shards = dict(stored.shards) if stored is not None else {}
    for shard_id, sequence in new.shards.items():
        current = shards.get(shard_id)
        if current is None or sequence_key(sequence) > sequence_key(current):
            shards[shard_id] = sequence
    return StreamPosition(shards)


def sequence_key(sequence: str) -> tuple[int, str]:
    """Sequence numbers order numerically (DynamoDB Streams: 21-40 digits; Kinesis: up to 128); a shard's end last."""
    if sequence == SHARD_END:
        return (1 << 30, "")
    return (len(sequence.lstrip("0")), sequence.lstrip("0"))


class TrackingStore(EventStore, Protocol):
    """An event store that records [`Tracking`][dynamo_es.Tracking] with its commits, readable as checkpoints."""

    @property
    def tracking(self) -> CheckpointStore:
        """The checkpoint store that sees the tracking records (a process manager's checkpoints)."""
        ...


class AsyncTrackingStore(AsyncEventStore, Protocol):
    """An async event store that records tracking with its commits, readable as checkpoints."""

    @property
    def tracking(self) -> EitherCheckpointStore:
        """The checkpoint store that sees the tracking records."""
        ...
