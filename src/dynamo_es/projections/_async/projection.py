"""The projection runner: apply each aggregate's events to a read model in version order, each once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import attrs

from ...app._checks import check_async_store
from ...core.backends.asyncio import AsyncStop, aclose_now, awaited, call
from ...core.changes import Change, ChangeKind, StreamPosition
from ...core.reading import Selection, to_selection
from ...core.steps import run_steps_async
from ...exceptions import ConfigurationError
from ...ports.checkpoints import EitherCheckpointStore, EitherEffectSink, StreamProgress
from ...ports.source import AsyncChangeFeed, StartAt
from ...ports.store import AsyncEventStore
from .._batch import BatchOutcome, RebuildProgress
from .._handlers import handler_of
from .._rules import History, handle_steps, log, replay_parked_steps, settle_steps

__all__ = ["AsyncProjection"]


@attrs.define
class AsyncProjection:
    """Feeds a read model from the event log: each aggregate's events in version order, each once.

    Whatever the delivery (duplicates, records of one transaction in any order, a stream trimmed
    before it was read), the handler sees versions 1, 2, 3, ... of every aggregate exactly in
    order: a change at or below the last applied version is skipped, and a change that skips
    ahead first loads the missing versions from ``store`` (strongly consistent) and applies them.
    Only inserts reach the handler unless ``kinds`` says otherwise.

    A projection reads what it declares (``reads``, or the ``@handles`` methods of a handler
    object): every other record is skipped before its event data is decoded, and still moves
    its stream's applied version forward. A record it reads but cannot decode (an unregistered
    type, a corrupt item, a failing upcaster) fails only its own aggregate, like a handler error.

    A handler that raises stops its aggregate for this batch (other aggregates go on) and the
    failure is counted; after ``max_attempts`` failures the aggregate is *parked*: it is skipped
    from then on, behind but never wrong, until `replay_parked()` after a fix.

    Attributes:
        name: the checkpoint name; one per read model.
        handler: called with each [`Change`][dynamo_es.Change] to apply; or an object whose
            [`@handles`][dynamo_es.handles] methods are called per event class (it then
            declares what the projection reads).
        checkpoints: where positions, versions and failures are saved.
        store: the event store the changes come from: gaps are filled from it, and `run()`
            and `rebuild()` follow it.
        kinds: which change kinds reach the handler.
        history: "replay" (default) or "baseline"; see `History`.
        max_attempts: failures of one event before its aggregate is parked; None never parks
            (`run()` then raises `ProjectionError`).
        effects: for exactly-once effects: the handler *returns* its effects (read-model writes,
            a unit of work) and ``effects`` applies them in one transaction with the record of the
            version applied, so a redelivered event changes nothing. The sink must record into
            ``checkpoints``' table. Only inserts are handled then. Without ``effects``, a
            handler that returns anything but None raises `ConfigurationError`: its writes
            would be dropped.
        reads: what a plain handler reads: a [`Selection`][dynamo_es.Selection], or
            event classes (or type names); None reads everything.
        selection: what the projection reads, from ``reads`` or the handler's ``@handles``.
    """

    name: str
    handler: Any
    checkpoints: EitherCheckpointStore
    store: AsyncEventStore = attrs.field(validator=lambda _, __, store: check_async_store(store))
    kinds: frozenset[ChangeKind] = attrs.field(default=frozenset({ChangeKind.INSERT}), kw_only=True)
    history: History = attrs.field(default="replay", kw_only=True)
    max_attempts: int | None = attrs.field(default=3, kw_only=True)
    retry_delay: float = attrs.field(default=0.2, kw_only=True)
    effects: EitherEffectSink | None = attrs.field(default=None, kw_only=True)
    reads: Selection | Iterable[type[Any] | str] | None = attrs.field(default=None, kw_only=True)
    selection: Selection = attrs.field(init=False)
    _feed: AsyncChangeFeed | None = attrs.field(default=None, init=False, repr=False)
    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.effects is not None and self.kinds != frozenset({ChangeKind.INSERT}):
            raise ConfigurationError("kinds", f"projection {self.name!r} has effects: it handles inserts only")
        reads = None if self.reads is None else to_selection(self.reads)
        self.handler, self.selection = handler_of(self.handler, reads, owner=f"projection {self.name!r}")

    # -- one batch --------------------------------------------------------------------------

    async def handle(self, changes: Sequence[Change]) -> BatchOutcome:
        """Apply ``changes`` by the rules above and save the versions applied; never raises for a handler error.

        Use it wherever changes arrive (an AWS Lambda function, say); `failed`
        says what must be delivered again.
        """
        return await run_steps_async(handle_steps(self, changes))

    @property
    def _stopping(self) -> bool:
        return self._stopped.is_set()

    async def _pause(self, seconds: float) -> None:
        await self._stopped.wait(seconds)

    # -- following the store ------------------------------------------------------------------

    async def run(self, *, stop_when_idle: bool = False, start_at: StartAt = "trim_horizon") -> int:
        """Follow the store's changes from the saved checkpoint until `stop()` (or idle).

        A batch with failures is handled again after a backoff until every failing aggregate
        succeeds or is parked; only then does the saved position move past it. Returns how many
        changes reached the handler.

        Raises:
            ProjectionError: with ``max_attempts=None``, the first handler error (its cause).
        """
        try:
            position = await awaited(self.checkpoints.load_position(self.name))
            feed = await self._subscribe(position, start_at)
            return await self._follow(feed, stop_when_idle=stop_when_idle)
        finally:
            self._stopped.clear()  # a stopped projection may run again

    def stop(self) -> None:
        """Make `run()` or `rebuild()` return after the batch in hand.

        A stop that comes before the subscription is open ends the run as soon as it is. Call
        the sync projection's from any thread, the async one's from its event loop.
        """
        self._stopped.set()
        if self._feed is not None:
            self._feed.stop()

    async def _subscribe(self, position: StreamPosition | None, start_at: StartAt) -> AsyncChangeFeed:
        subscribe = getattr(self.store, "subscribe_to_changes", None)
        if subscribe is None:
            raise TypeError(f"{type(self.store).__name__} offers no subscription to its changes")
        reads = {} if self.selection.everything else {"reads": self.selection}  # a store of the user's may take none
        feed: AsyncChangeFeed = await awaited(subscribe(position, start_at=start_at, **reads))
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
                await call(self.checkpoints.save_position, self.name, feed.position)
                if feed.stopped:
                    break
            if feed.records_lost != lost:
                total += await self._catch_up()
        finally:
            await aclose_now(batches)
            await _close(feed)
        return total

    async def _settle(self, batch: Sequence[Change]) -> int:
        """Handle ``batch`` until nothing in it is left failing (applied, or parked)."""
        return await run_steps_async(settle_steps(self, batch))

    async def _catch_up(self) -> int:
        """Apply from the table whatever the trimmed records held (versions already applied are skipped)."""
        if self.history == "baseline":
            log.warning("%s: stream records were trimmed; a baseline projection does not replay history", self.name)
            return 0
        pages, applied = self._scan(4), 0
        log.warning("%s: stream records were trimmed before they were read; catching up from the table", self.name)
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

    # -- rebuilding from the table --------------------------------------------------------------

    async def rebuild(
        self,
        *,
        segments: int = 4,
        follow: bool = True,
        stop_when_idle: bool = True,
        on_progress: Callable[[RebuildProgress], Any] | None = None,
    ) -> RebuildProgress:
        """Build (or catch up) the read model from the events table, then follow the live stream.

        A subscription is opened at the newest record *before* the table is read, so every event
        is either in the table read or after that point of the stream (or both: the version rule
        applies it once). Events already applied under this name are skipped, so a rebuild into
        a new read model uses a new ``name``. Writers may keep appending throughout. Without
        ``follow`` no subscription is opened: a table without a stream can be rebuilt too.

        Args:
            segments: parallel Scan segments reading the table.
            follow: after the table, follow the stream (until idle with ``stop_when_idle``).
            stop_when_idle: stop following once caught up.
            on_progress: called after each page with a `RebuildProgress`.
        """
        pages = self._scan(segments)
        feed = await self._subscribe(None, "latest") if follow else None
        try:
            if feed is not None:
                await awaited(feed.start())  # before the table is read: every event is in the scan, or after it
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
                    await awaited(on_progress(RebuildProgress(read, applied, time.monotonic() - began, unread=unread)))
                if self._stopped.is_set():
                    return RebuildProgress(read, applied, time.monotonic() - began, unread=unread)
        finally:
            await aclose_now(pages)
        if feed is not None:
            applied += await self._follow(feed, stop_when_idle=stop_when_idle)
        progress = RebuildProgress(read, applied, time.monotonic() - began, done=True, unread=unread)
        if on_progress is not None:
            await awaited(on_progress(progress))
        return progress

    # -- parked streams -----------------------------------------------------------------------

    async def parked(self) -> dict[str, StreamProgress]:
        """The parked streams: their last applied version, failure count and last error."""
        parked: dict[str, StreamProgress] = await awaited(self.checkpoints.parked(self.name))
        return parked

    async def replay_parked(self, stream_ids: Iterable[str] | None = None) -> BatchOutcome:
        """Apply parked streams' events after their last applied version, then unpark them.

        Call it once the handler is fixed. Events are applied while the stream is still parked,
        so a live consumer skips it meanwhile; a stream that fails again stays parked. After
        unparking, anything appended in between is applied too.
        """
        return await run_steps_async(replay_parked_steps(self, stream_ids))


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
        await awaited(close())
