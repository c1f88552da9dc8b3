"""Snapshots: an aggregate's state at a version, so long streams load without full replay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["AsyncSnapshotStore", "EveryNEvents", "Snapshot", "SnapshotStore", "SnapshotStrategy"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class Snapshot:
    """An aggregate's state (JSON) after the event at ``version``.

    ``schema_version`` is the aggregate class's ``snapshot_version`` when it was taken; a
    snapshot whose schema version differs from the class's is ignored (full replay).
    """

    aggregate_type: str
    aggregate_id: str
    version: int
    schema_version: int
    state: str
    taken_at: datetime = attrs.field(factory=_utc_now)


@runtime_checkable
class SnapshotStore(Protocol):
    """Where snapshots live (never in the events table)."""

    def load_latest(self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None) -> Snapshot | None:
        """The newest snapshot of the aggregate at or below ``max_version``, or None."""
        ...

    def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` (replacing one at the same version)."""
        ...


@runtime_checkable
class SnapshotStrategy(Protocol):
    """Decides after a save whether to take a snapshot."""

    def should_snapshot(self, previous_version: int, new_version: int) -> bool:
        """Whether a save that moved the aggregate from ``previous_version`` to ``new_version`` snapshots."""
        ...


@attrs.frozen
class EveryNEvents:
    """Snapshot whenever a save crosses a multiple of ``n`` events (100 -> at 100, 200, ...)."""

    n: int = attrs.field(validator=attrs.validators.ge(1))

    def should_snapshot(self, previous_version: int, new_version: int) -> bool:
        """True when ``new_version // n`` passed ``previous_version // n``."""
        return new_version // self.n > previous_version // self.n


@runtime_checkable
class AsyncSnapshotStore(Protocol):
    """[`SnapshotStore`][dynamo_es.SnapshotStore] with awaitable methods."""

    async def load_latest(
        self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None
    ) -> Snapshot | None:
        """The newest snapshot at or below ``max_version``, or None."""
        ...

    async def save(self, snapshot: Snapshot) -> None:
        """Store ``snapshot``."""
        ...
