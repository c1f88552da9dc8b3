"""Where a projection's changes come from: any store that offers a subscription to its appends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from ..core.changes import Change, StreamPosition
from ..core.reading import Selection
from ..domain.events import StoredEvent

__all__ = [
    "AsyncChangeFeed",
    "ChangeFeed",
    "ChangeReader",
    "ChangeSource",
    "ScannableStore",
    "StartAt",
    "TrimmedPolicy",
]

StartAt = Literal["trim_horizon", "latest"]
"""Where a subscription without a position starts: the oldest record kept, or now."""
TrimmedPolicy = Literal["restart", "raise"]
"""On records trimmed before they were read: log and go on from the oldest kept record, or raise."""


class ChangeFeed(Protocol):
    """A subscription: batches of changes, in order per aggregate, until stopped."""

    records_lost: int
    """How often records were trimmed before they were read; 0 where that cannot happen."""
    position: StreamPosition
    """How far the feed has delivered (including shards it read to their end)."""

    def start(self) -> ChangeFeed:
        """Fix where reading begins (for "latest": now), before the first batch is asked for."""
        ...

    def batches(self, *, stop_when_idle: bool = False) -> Iterator[list[Change]]:
        """The changes, one list per read; with ``stop_when_idle``, end once caught up."""
        ...

    def stop(self) -> None:
        """End iteration after the batch in hand; safe from another thread."""
        ...

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        ...


@runtime_checkable
class ChangeSource(Protocol):
    """A store whose appends can be followed (both stores are)."""

    def subscribe_to_changes(
        self,
        position: StreamPosition | None = None,
        *,
        start_at: StartAt = "trim_horizon",
        reads: Selection | None = None,
    ) -> ChangeFeed:
        """A subscription resuming after ``position``, or starting at ``start_at``.

        Records outside ``reads`` arrive as unread changes (not decoded); a record that cannot
        be decoded arrives as a change carrying its error.
        """
        ...


@runtime_checkable
class ScannableStore(Protocol):
    """A store that can read every stream's events, for rebuilding read models (both stores can)."""

    def scan(self, *, segments: int = 4, page_size: int = 1000) -> Iterator[list[StoredEvent]]:
        """Every stream's events, in pages; ``segments`` parallel readers where the store has them."""
        ...


@runtime_checkable
class ChangeReader(Protocol):
    """A store that reads its events as changes for one reader: what it does not read stays undecoded.

    What projections use to fill gaps, replay and rebuild (every store of dynamo-es is one). A
    record outside ``reads`` becomes an unread change, and a record that cannot be decoded a
    change carrying its error, so one bad record fails no more than its own aggregate.
    """

    def read_changes(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        reads: Selection | None = None,
    ) -> list[Change]:
        """The stream's events from ``from_version`` to ``to_version`` as stored changes, in order."""
        ...

    def scan_changes(
        self, *, reads: Selection | None = None, segments: int = 4, page_size: int = 1000
    ) -> Iterator[list[Change]]:
        """Every stream's events as stored changes, in pages."""
        ...


class AsyncChangeFeed(Protocol):
    """An async subscription: batches of changes, in order per aggregate, until stopped."""

    records_lost: int
    position: StreamPosition

    async def start(self) -> Any:
        """Fix where reading begins."""
        ...

    def batches(self, *, stop_when_idle: bool = False) -> AsyncIterator[list[Change]]:
        """The changes, one list per read."""
        ...

    def stop(self) -> None:
        """End iteration after the batch in hand."""
        ...

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        ...
