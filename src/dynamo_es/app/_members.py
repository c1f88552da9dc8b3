"""What both units of work hold: their aggregates by stream, what a commit appends, what it snapshots."""

from __future__ import annotations

from typing import Self, TypeVar

from ..domain.aggregate import AggregateRoot
from ..domain.events import EventMetadata
from ..exceptions import InvalidStreamError
from ..ports.snapshots import SnapshotStrategy
from ..ports.store import CommitResult, StreamAppend, make_stream_id

__all__ = ["UnitMembers", "mark_committed"]

A = TypeVar("A", bound=AggregateRoot)


class UnitMembers:
    """What both units of work hold: their aggregates by stream, and what a commit appends."""

    _aggregates: dict[str, AggregateRoot]
    snapshot_strategy: SnapshotStrategy | None

    def _member(self, aggregate_class: type[A], aggregate_id: str) -> tuple[str, A | None]:
        """The stream id, and the aggregate already in the unit for it (None if there is none)."""
        stream_id = make_stream_id(aggregate_class.aggregate_type, aggregate_id)
        known = self._aggregates.get(stream_id)
        if known is None or isinstance(known, aggregate_class):
            return stream_id, known
        raise InvalidStreamError(f"{stream_id} is already in this unit of work as a {type(known).__name__}")

    def add(self, *aggregates: AggregateRoot) -> Self:
        """Include aggregates created (or loaded) elsewhere; returns the unit.

        Raises:
            InvalidStreamError: another object of the same stream is already in the unit.
        """
        for aggregate in aggregates:
            stream_id = make_stream_id(aggregate.aggregate_type, aggregate.id)
            if self._aggregates.setdefault(stream_id, aggregate) is not aggregate:
                raise InvalidStreamError(f"{stream_id} is already in this unit of work as another object")
        return self

    @property
    def pending(self) -> list[AggregateRoot]:
        """The aggregates with uncommitted events, in the order they joined the unit."""
        return [aggregate for aggregate in self._aggregates.values() if aggregate.uncommitted_events]

    def appends(self, *, metadata: EventMetadata | None = None) -> list[StreamAppend]:
        """What a commit appends: each pending aggregate's events after its committed version."""
        return [
            StreamAppend(a.id, a.aggregate_type, a.uncommitted_events, a.committed_version, metadata=metadata)
            for a in self.pending
        ]

    def due_snapshots(self, pending: list[AggregateRoot], previous: list[int]) -> list[AggregateRoot]:
        """Which of the committed ``pending`` (once at the ``previous`` versions) the strategy snapshots now."""
        strategy = self.snapshot_strategy
        if strategy is None:
            return []
        return [a for a, before in zip(pending, previous, strict=True) if strategy.should_snapshot(before, a.version)]


def mark_committed(pending: list[AggregateRoot], result: CommitResult) -> CommitResult:
    """Mark ``pending`` committed unless the commit was a redelivery (nothing written); return ``result``."""
    if not result.already_processed:
        for aggregate in pending:
            aggregate.mark_committed()
    return result
