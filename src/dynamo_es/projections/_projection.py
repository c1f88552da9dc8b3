"""Projection: apply each aggregate's events to a read model in version order, each once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from .._events import StoredEvent
from .._steps import run_steps
from .._store import EventStore
from ..app._checks import check_sync_store
from ..exceptions import ConfigurationError
from ._batch import BatchOutcome, RebuildProgress
from ._changes import Change, ChangeKind
from ._checkpoints import CheckpointStore, StreamProgress
from ._handlers import handler_of
from ._reading import Selection, to_selection
from ._rules import History, handle_steps, replay_parked_steps, settle_steps
from ._source import ChangeFeed, ChangeSource, ScannableStore, StartAt

__all__ = ["BatchOutcome", "EffectSink", "History", "Projection", "RebuildProgress"]

log = logging.getLogger("dynamo_es.projections")


@runtime_checkable
class EffectSink(Protocol):
    """Applies what a handler returned together with the record that its event was applied: atomically."""

    def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Apply ``effects`` and record ``event``'s version as applied by ``name``, in one transaction.

        Returns False, applying nothing, when that version (or a later one) is recorded already.
        """
        ...


@attrs.define
class Projection:
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
    checkpoints: CheckpointStore
    store: EventStore = attrs.field(validator=lambda _, __, store: check_sync_store(store))
    kinds: frozenset[ChangeKind] = attrs.field(default=frozenset({ChangeKind.INSERT}), kw_only=True)
    history: History = attrs.field(default="replay", kw_only=True)
    max_attempts: int | None = attrs.field(default=3, kw_only=True)
    retry_delay: float = attrs.field(default=0.2, kw_only=True)
    effects: EffectSink | None = attrs.field(default=None, kw_only=True)
    reads: Selection | Iterable[type[Any] | str] | None = attrs.field(default=None, kw_only=True)
    selection: Selection = attrs.field(init=False)
    _feed: ChangeFeed | None = attrs.field(default=None, init=False, repr=False)
    _stopped: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.effects is not None and self.kinds != frozenset({ChangeKind.INSERT}):
            raise ConfigurationError("kinds", f"projection {self.name!r} has effects: it handles inserts only")
        reads = None if self.reads is None else to_selection(self.reads)
        self.handler, self.selection = handler_of(self.handler, reads, owner=f"projection {self.name!r}")

    # -- one batch --------------------------------------------------------------------------

    def handle(self, changes: Sequence[Change]) -> BatchOutcome:
        """Apply ``changes`` by the rules above and save the versions applied; never raises for a handler error.

        Use it wherever changes arrive (an AWS Lambda function, say); `failed`
        says what must be delivered again.
        """
        return run_steps(handle_steps(self, changes))

    @property
    def _stopping(self) -> bool:
        return self._stopped.is_set()

    def _pause(self, seconds: float) -> None:
        self._stopped.wait(seconds)

    # -- following the store ------------------------------------------------------------------

    def run(self, *, stop_when_idle: bool = False, start_at: StartAt = "trim_horizon") -> int:
        """Follow the store's changes from the saved checkpoint until `stop()` (or idle).

        A batch with failures is handled again after a backoff until every failing aggregate
        succeeds or is parked; only then does the saved position move past it. Returns how many
        changes reached the handler.

        Raises:
            ProjectionError: with ``max_attempts=None``, the first handler error (its cause).
        """
        try:
            position = self.checkpoints.load_position(self.name)
            feed = self._source().subscribe_to_changes(position, start_at=start_at, **self._reads())
            return self._follow(feed, stop_when_idle=stop_when_idle)
        finally:
            self._stopped.clear()  # a stopped projection may run again

    def stop(self) -> None:
        """Make `run()` or `rebuild()` return after the batch in hand; safe from another thread.

        A stop that comes before the subscription is open ends the run as soon as it is.
        """
        self._stopped.set()
        if self._feed is not None:
            self._feed.stop()

    def _reads(self) -> dict[str, Selection]:
        """``reads=`` for a subscription, when there is a selection (a source of the user's own may not take one)."""
        return {} if self.selection.everything else {"reads": self.selection}

    def _source(self) -> ChangeSource:
        if not isinstance(self.store, ChangeSource):
            raise TypeError(f"{type(self.store).__name__} offers no subscription to its changes")
        return self.store

    def _follow(self, feed: ChangeFeed, *, stop_when_idle: bool) -> int:
        self._feed = feed
        if self._stopped.is_set():  # stop() came while the subscription was being opened
            feed.stop()
        total = 0
        lost = feed.records_lost
        for batch in feed.batches(stop_when_idle=stop_when_idle):
            if feed.records_lost != lost:  # trimmed before read: what they held is still in the table
                lost = feed.records_lost
                total += self._catch_up()
            total += self._settle(batch)
            self.checkpoints.save_position(self.name, feed.position)
            if feed.stopped:
                break
        if feed.records_lost != lost:
            total += self._catch_up()
        return total

    def _catch_up(self) -> int:
        """Apply from the table whatever the trimmed records held (versions already applied are skipped)."""
        if self.history == "baseline":
            log.warning("%s: stream records were trimmed; a baseline projection does not replay history", self.name)
            return 0
        if not isinstance(self.store, ScannableStore):
            raise TypeError(f"{type(self.store).__name__} cannot read all of its events to recover trimmed records")
        log.warning("%s: stream records were trimmed before they were read; catching up from the table", self.name)
        return sum(self._settle(page) for page in self._pages(self.store, 4))

    def _pages(self, store: ScannableStore, segments: int) -> Iterator[list[Change]]:
        """The table's events as changes, undecoded where unread (``scan_changes``; else a strict ``scan``)."""
        scan_changes = getattr(store, "scan_changes", None)
        if scan_changes is not None:
            pages: Iterator[list[Change]] = scan_changes(reads=self.selection, segments=segments)
            return pages
        return ([Change.stored(event) for event in page] for page in store.scan(segments=segments))

    def _settle(self, batch: Sequence[Change]) -> int:
        """Handle ``batch`` until nothing in it is left failing (applied, or parked)."""
        return run_steps(settle_steps(self, batch))

    # -- rebuilding from the table --------------------------------------------------------------

    def rebuild(
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
        a new read model uses a new ``name``. Writers may keep appending throughout.

        Args:
            segments: parallel Scan segments (threads) reading the table.
            follow: after the table, follow the stream (until idle with ``stop_when_idle``).
            stop_when_idle: stop following once caught up.
            on_progress: called after each page with a `RebuildProgress`.
        """
        if not isinstance(self.store, ScannableStore):
            raise TypeError(f"{type(self.store).__name__} cannot read all of its events")
        try:
            # Opened before the table is read, to follow: every event is in the scan or after this point.
            feed = (
                self._source().subscribe_to_changes(None, start_at="latest", **self._reads()).start()
                if follow
                else None
            )
            return self._rebuild(self.store, feed, segments, stop_when_idle=stop_when_idle, on_progress=on_progress)
        finally:
            self._stopped.clear()

    def _rebuild(
        self,
        store: ScannableStore,
        feed: ChangeFeed | None,
        segments: int,
        *,
        stop_when_idle: bool,
        on_progress: Callable[[RebuildProgress], Any] | None,
    ) -> RebuildProgress:
        began = time.monotonic()
        read = applied = unread = 0
        for page in self._pages(store, segments):
            read += len(page)
            unread += sum(change.unread for change in page)
            applied += self._settle(page)
            if on_progress is not None:
                on_progress(RebuildProgress(read, applied, time.monotonic() - began, unread=unread))
            if self._stopped.is_set():
                return RebuildProgress(read, applied, time.monotonic() - began, unread=unread)
        if feed is not None:
            applied += self._follow(feed, stop_when_idle=stop_when_idle)
        progress = RebuildProgress(read, applied, time.monotonic() - began, done=True, unread=unread)
        if on_progress is not None:
            on_progress(progress)
        return progress

    # -- parked streams -----------------------------------------------------------------------

    def parked(self) -> dict[str, StreamProgress]:
        """The parked streams: their last applied version, failure count and last error."""
        return self.checkpoints.parked(self.name)

    def replay_parked(self, stream_ids: Iterable[str] | None = None) -> BatchOutcome:
        """Apply parked streams' events after their last applied version, then unpark them.

        Call it once the handler is fixed. Events are applied while the stream is still parked,
        so a live consumer skips it meanwhile; a stream that fails again stays parked. After
        unparking, anything appended in between is applied too.
        """
        return run_steps(replay_parked_steps(self, stream_ids))
