"""AsyncProjection: the projection rules on async ports (store, subscription, checkpoints, handler)."""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from .._steps import run_steps_async
from .._store import AsyncEventStore
from ..app._backends.asyncio import AsyncStop, aclose_now
from ..exceptions import ConfigurationError
from ._batch import BatchOutcome, RebuildProgress
from ._changes import Change, ChangeKind, StreamPosition
from ._checkpoints import CheckpointStore, StreamProgress
from ._handlers import handler_of
from ._reading import Selection, to_selection
from ._rules import History, handle_steps, log, replay_parked_steps, settle_steps
from ._source import StartAt

__all__ = ["AsyncChangeFeed", "AsyncCheckpointStore", "AsyncProjection"]


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


async def _awaited(result: Any) -> Any:
    """``result``, awaited if it is awaitable (a port may be sync or async)."""
    return await result if inspect.isawaitable(result) else result


@attrs.define
class AsyncProjection:
    """[`Projection`][dynamo_es.Projection] for asyncio: the same rules, every port awaited.

    The ordering, gap filling, failure counting, parking, replays and exactly-once effects are
    the sync projection's (one set of rules drives both). ``handler`` may be a coroutine
    function or a plain function; ``checkpoints`` and ``effects`` may be async
    ([`AsyncDynamoDBCheckpointStore`][dynamo_es.dynamodb.aio.AsyncDynamoDBCheckpointStore]) or sync
    (an in-memory checkpoint store); ``store`` is an [`AsyncEventStore`][dynamo_es.aio.AsyncEventStore],
    and `run()` and `rebuild()` need its ``subscribe_to_changes()`` and ``scan()`` (both async
    stores have them). Call `stop()` from the event loop. The attributes are those of
    [`Projection`][dynamo_es.Projection].
    """

    name: str
    handler: Any
    checkpoints: CheckpointStore | AsyncCheckpointStore
    store: AsyncEventStore
    kinds: frozenset[ChangeKind] = attrs.field(default=frozenset({ChangeKind.INSERT}), kw_only=True)
    history: History = attrs.field(default="replay", kw_only=True)
    max_attempts: int | None = attrs.field(default=3, kw_only=True)
    retry_delay: float = attrs.field(default=0.2, kw_only=True)
    effects: Any = attrs.field(default=None, kw_only=True)
    reads: Selection | Iterable[type[Any] | str] | None = attrs.field(default=None, kw_only=True)
    selection: Selection = attrs.field(init=False)
    _feed: AsyncChangeFeed | None = attrs.field(default=None, init=False, repr=False)
    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.effects is not None and self.kinds != frozenset({ChangeKind.INSERT}):
            raise ConfigurationError("kinds", f"projection {self.name!r} has effects: it handles inserts only")
        reads = None if self.reads is None else to_selection(self.reads)
        self.handler, self.selection = handler_of(self.handler, reads, owner=f"projection {self.name!r}")

    @property
    def _stopping(self) -> bool:
        return self._stopped.is_set()

    async def _pause(self, seconds: float) -> None:
        await self._stopped.wait(seconds)

    async def handle(self, changes: Sequence[Change]) -> BatchOutcome:
        """Apply ``changes`` and save the versions applied; see [`Projection.handle`][dynamo_es.Projection.handle]."""
        return await run_steps_async(handle_steps(self, changes))

    async def replay_parked(self, stream_ids: Iterable[str] | None = None) -> BatchOutcome:
        """Apply parked streams' events, then unpark them.

        See [`Projection.replay_parked`][dynamo_es.Projection.replay_parked].
        """
        return await run_steps_async(replay_parked_steps(self, stream_ids))

    async def parked(self) -> dict[str, StreamProgress]:
        """The parked streams: their last applied version, failure count and last error."""
        parked: dict[str, StreamProgress] = await _awaited(self.checkpoints.parked(self.name))
        return parked

    def stop(self) -> None:
        """Make `run()` or `rebuild()` return after the batch in hand."""
        self._stopped.set()
        if self._feed is not None:
            self._feed.stop()

    async def run(self, *, stop_when_idle: bool = False, start_at: StartAt = "trim_horizon") -> int:
        """Follow the store's changes from the saved checkpoint; see [`Projection.run`][dynamo_es.Projection.run]."""
        try:
            position = await _awaited(self.checkpoints.load_position(self.name))
            feed = await self._subscribe(position, start_at)
            return await self._follow(feed, stop_when_idle=stop_when_idle)
        finally:
            self._stopped.clear()  # a stopped projection may run again

    async def _subscribe(self, position: StreamPosition | None, start_at: StartAt) -> AsyncChangeFeed:
        subscribe = getattr(self.store, "subscribe_to_changes", None)
        if subscribe is None:
            raise TypeError(f"{type(self.store).__name__} offers no subscription to its changes")
        reads = {} if self.selection.everything else {"reads": self.selection}  # a store of the user's may take none
        feed: AsyncChangeFeed = await subscribe(position, start_at=start_at, **reads)
        return feed

    async def _follow(self, feed: AsyncChangeFeed, *, stop_when_idle: bool) -> int:
        self._feed = feed
        if self._stopped.is_set():  # stop() came while the subscription was being opened
            feed.stop()
        total, lost = 0, feed.records_lost
        batches = feed.batches(stop_when_idle=stop_when_idle)
        try:
            async for batch in batches:
                if feed.records_lost != lost:  # trimmed before read: what they held is still in the table
                    lost = feed.records_lost
                    total += await self._catch_up()
                total += await self._settle(batch)
                await _awaited(self.checkpoints.save_position(self.name, feed.position))
                if feed.stopped:
                    break
            if feed.records_lost != lost:
                total += await self._catch_up()
        finally:
            await aclose_now(batches)
            await _close(feed)
        return total

    async def _settle(self, batch: Sequence[Change]) -> int:
        return await run_steps_async(settle_steps(self, batch))

    async def _catch_up(self) -> int:
        """Apply from the table whatever the trimmed records held (versions already applied are skipped)."""
        if self.history == "baseline":
            log.warning("%s: stream records were trimmed; a baseline projection does not replay history", self.name)
            return 0
        log.warning("%s: stream records were trimmed before they were read; catching up from the table", self.name)
        pages, applied = self._scan(4), 0
        try:
            async for page in pages:
                applied += await self._settle(page)
        finally:
            await aclose_now(pages)
        return applied

    def _scan(self, segments: int) -> AsyncIterator[list[Change]]:
        """The table's events as changes, undecoded where unread (``scan_changes``; else a strict ``scan``)."""
        scan_changes = getattr(self.store, "scan_changes", None)
        if scan_changes is not None:
            changes: AsyncIterator[list[Change]] = scan_changes(reads=self.selection, segments=segments)
            return changes
        scan = getattr(self.store, "scan", None)
        if scan is None:
            raise TypeError(f"{type(self.store).__name__} cannot read all of its events")
        return _stored_pages(scan(segments=segments))

    async def rebuild(
        self,
        *,
        segments: int = 4,
        follow: bool = True,
        stop_when_idle: bool = True,
        on_progress: Callable[[RebuildProgress], Any] | None = None,
    ) -> RebuildProgress:
        """Build the read model from the table, then follow the stream.

        See [`Projection.rebuild`][dynamo_es.Projection.rebuild]: the same guarantees.
        """
        pages = self._scan(segments)
        feed = await self._subscribe(None, "latest") if follow else None
        try:
            if feed is not None:
                await feed.start()  # before the table is read: every event is in the scan, or after this point
            return await self._rebuild(pages, feed, stop_when_idle=stop_when_idle, on_progress=on_progress)
        finally:
            self._stopped.clear()  # a stopped projection may run again
            if feed is not None:
                await _close(feed)

    async def _rebuild(
        self,
        pages: AsyncIterator[list[Change]],
        feed: AsyncChangeFeed | None,
        *,
        stop_when_idle: bool,
        on_progress: Callable[[RebuildProgress], Any] | None,
    ) -> RebuildProgress:
        began, read, applied, unread = time.monotonic(), 0, 0, 0
        try:
            async for page in pages:
                read += len(page)
                unread += sum(change.unread for change in page)
                applied += await self._settle(page)
                if on_progress is not None:
                    progress = RebuildProgress(read, applied, time.monotonic() - began, unread=unread)
                    await _awaited(on_progress(progress))
                if self._stopped.is_set():
                    return RebuildProgress(read, applied, time.monotonic() - began, unread=unread)
        finally:
            await aclose_now(pages)
        if feed is not None:
            applied += await self._follow(feed, stop_when_idle=stop_when_idle)
        progress = RebuildProgress(read, applied, time.monotonic() - began, done=True, unread=unread)
        if on_progress is not None:
            await _awaited(on_progress(progress))
        return progress


async def _stored_pages(pages: AsyncIterator[list[Any]]) -> AsyncIterator[list[Change]]:
    """A strict scan's pages of stored events as pages of changes (a store without ``scan_changes``)."""
    try:
        async for page in pages:
            yield [Change.stored(event) for event in page]
    finally:
        await aclose_now(pages)


async def _close(feed: AsyncChangeFeed) -> None:
    """Close the feed's client, if it has one (closing twice is harmless)."""
    close = getattr(feed, "close", None)
    if close is not None:
        await _awaited(close())
