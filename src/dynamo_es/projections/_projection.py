"""Projection: apply each aggregate's events to a read model in version order, each once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from .._events import StoredEvent
from .._retry import backoff_delay
from .._store import EventStore
from ..exceptions import ConcurrencyError, ConfigurationError, ProjectionError
from ._batch import BatchOutcome, RebuildProgress, Tally, group_changes
from ._changes import Change, ChangeKind
from ._checkpoints import CheckpointStore, StreamProgress, sequence_key
from ._source import ChangeFeed, ChangeSource, ScannableStore, StartAt

__all__ = ["BatchOutcome", "EffectSink", "History", "Projection", "RebuildProgress"]

log = logging.getLogger("dynamo_es.projections")

History = Literal["replay", "baseline"]
"""For an aggregate the projection has never seen: apply its whole history first ("replay"), or
take the first version that arrives as the starting point ("baseline", for notifiers that must
not act on the past)."""


_CONFLICT_RETRIES = 3
"""How often a handler whose effects met a ConcurrencyError runs again at once, before it counts as failed."""


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

    A handler that raises stops its aggregate for this batch (other aggregates go on) and the
    failure is counted; after ``max_attempts`` failures the aggregate is *parked*: it is skipped
    from then on, behind but never wrong, until `replay_parked()` after a fix.

    Attributes:
        name: the checkpoint name; one per read model.
        handler: called with each [`Change`][dynamo_es.Change] to apply.
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
            ``checkpoints``' table. Only inserts are handled then.
    """

    name: str
    handler: Callable[[Change], Any]
    checkpoints: CheckpointStore
    store: EventStore
    kinds: frozenset[ChangeKind] = attrs.field(default=frozenset({ChangeKind.INSERT}), kw_only=True)
    history: History = attrs.field(default="replay", kw_only=True)
    max_attempts: int | None = attrs.field(default=3, kw_only=True)
    retry_delay: float = attrs.field(default=0.2, kw_only=True)
    effects: EffectSink | None = attrs.field(default=None, kw_only=True)
    _feed: ChangeFeed | None = attrs.field(default=None, init=False, repr=False)
    _stopped: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.effects is not None and self.kinds != frozenset({ChangeKind.INSERT}):
            raise ConfigurationError("kinds", f"projection {self.name!r} has effects: it handles inserts only")

    # -- one batch --------------------------------------------------------------------------

    def handle(self, changes: Sequence[Change]) -> BatchOutcome:
        """Apply ``changes`` by the rules above and save the versions applied; never raises for a handler error.

        Use it wherever changes arrive (an AWS Lambda function, say); `failed`
        says what must be delivered again.
        """
        groups, unwanted = group_changes(changes, self.kinds)
        tally = Tally(skipped=unwanted)
        progress = self.checkpoints.load_progress(self.name, groups) if groups else {}
        try:
            for stream_id, group in groups.items():
                self._apply_stream(group, progress.get(stream_id), tally)
        finally:
            if tally.versions:
                self.checkpoints.save_versions(self.name, tally.versions)
        return tally.outcome()

    def _apply_stream(self, group: list[Change], known: StreamProgress | None, tally: Tally) -> None:
        state = known or StreamProgress()
        if state.parked:
            tally.skipped += len(group)
            return
        last = state.version
        if last == 0 and self.history == "baseline" and group[0].kind is ChangeKind.INSERT:
            last = group[0].event.version - 1  # nothing applied yet (a failure may have been counted)
        for index, change in enumerate(group):
            if change.kind is ChangeKind.INSERT and change.event.version <= last:
                tally.skipped += 1
                continue
            applied = self._apply_change(change, last, tally)
            if applied is None:
                self._report_failure(group[index:], tally)
                return
            last = applied

    def _report_failure(self, unapplied: list[Change], tally: Tally) -> None:
        """Ask for the unapplied changes again, from the lowest sequence number among them.

        Versions are applied in order, but a later version may have arrived at a lower sequence
        number; Lambda redelivers everything after the lowest reported one.
        """
        tally.skipped += len(unapplied) - 1
        if tally.parked and tally.parked[-1] == unapplied[0].event.stream_id:
            return
        tally.failed.append(min(unapplied, key=lambda change: sequence_key(change.sequence_number)))

    def _apply_change(self, change: Change, last: int, tally: Tally) -> int | None:
        """Apply ``change`` (after the versions missing before it); the last version applied, or None."""
        if change.kind is not ChangeKind.INSERT:
            return last if self._call(change, tally) else None
        event = change.event
        if event.version > last + 1:
            for stored in self.store.load(
                event.aggregate_id, event.aggregate_type, from_version=last + 1, to_version=event.version - 1
            ):
                if not self._call(Change.stored(stored), tally):
                    return None
                tally.backfilled += 1
                last = stored.version
        return event.version if self._call(change, tally) else None

    def _call(self, change: Change, tally: Tally) -> bool:
        event = change.event
        try:
            applied = self._apply(change)
        except Exception as error:  # noqa: BLE001 (a read model's handler may raise anything; it is recorded)
            if self._failed(event.stream_id, event.version, error, tally, insert=change.kind is ChangeKind.INSERT):
                return False
            applied = False
        if not applied:
            tally.skipped += 1  # applied meanwhile, by another worker: its record said so
            return True
        tally.applied += 1
        if change.kind is ChangeKind.INSERT and self.effects is None:
            tally.versions[event.stream_id] = event.version
        return True

    def _apply(self, change: Change) -> bool:
        """Run the handler (and commit its effects); False when the effects' record says it was applied."""
        if self.effects is None:
            self.handler(change)
            return True
        for attempt in range(1, _CONFLICT_RETRIES + 1):
            effects = self.handler(change)
            try:
                return self.effects.commit_effects(self.name, change.event, effects)
            except ConcurrencyError:
                if attempt == _CONFLICT_RETRIES:
                    raise
                log.info(
                    "%s: %s v%d met a concurrent write; handling it again",
                    self.name,
                    change.event.stream_id,
                    change.event.version,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, stream_id: str, version: int, error: Exception, tally: Tally, *, insert: bool = True) -> bool:
        """Count the failure (parking the stream at ``max_attempts``); False when the insert was applied meanwhile."""
        if tally.versions:  # what was applied before the failure is saved before the failure is counted
            self.checkpoints.save_versions(self.name, tally.versions)
            tally.versions.clear()  # saved: handle() saves only what comes after
        text = f"{type(error).__name__}: {error}"
        failures = self.checkpoints.record_failure(self.name, stream_id, version, text, park_after=self.max_attempts)
        if failures == 0 and insert:  # another worker applied it meanwhile: this attempt's error does not matter
            log.info("%s: %s v%d was applied by another worker meanwhile (%s)", self.name, stream_id, version, text)
            return False
        if self.max_attempts is not None and failures >= self.max_attempts:
            log.error("%s: parked %s at v%d after %d failures: %s", self.name, stream_id, version, failures, text)
            tally.parked.append(stream_id)
            return True
        log.warning("%s: %s v%d failed (attempt %d): %s", self.name, stream_id, version, failures, text)
        failure = ProjectionError(self.name, stream_id, version, tally.applied)
        failure.__cause__ = error
        tally.errors.append(failure)
        return True

    # -- following the store ------------------------------------------------------------------

    def run(self, *, stop_when_idle: bool = False, start_at: StartAt = "trim_horizon") -> int:
        """Follow the store's changes from the saved checkpoint until `stop()` (or idle).

        A batch with failures is handled again after a backoff until every failing aggregate
        succeeds or is parked; only then does the saved position move past it. Returns how many
        changes reached the handler.

        Raises:
            ProjectionError: with ``max_attempts=None``, the first handler error (its cause).
        """
        position = self.checkpoints.load_position(self.name)
        feed = self._source().subscribe_to_changes(position, start_at=start_at)
        return self._follow(feed, stop_when_idle=stop_when_idle)

    def stop(self) -> None:
        """Make `run()` or `rebuild()` return after the batch in hand; safe from another thread."""
        self._stopped.set()
        if self._feed is not None:
            self._feed.stop()

    def _source(self) -> ChangeSource:
        if not isinstance(self.store, ChangeSource):
            raise TypeError(f"{type(self.store).__name__} offers no subscription to its changes")
        return self.store

    def _follow(self, feed: ChangeFeed, *, stop_when_idle: bool) -> int:
        self._feed = feed
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
        return sum(self._settle([Change.stored(event) for event in page]) for page in self.store.scan())

    def _settle(self, batch: Sequence[Change]) -> int:
        """Handle ``batch`` until nothing in it is left failing (applied, or parked)."""
        applied = retry = 0
        while True:
            outcome = self.handle(batch)
            applied += outcome.applied
            if not outcome.failed:
                return applied
            if self.max_attempts is None or self._stopped.is_set():
                raise outcome.errors[0]
            self._stopped.wait(backoff_delay(retry, self.retry_delay, 30.0))
            retry += 1

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
        feed = self._source().subscribe_to_changes(None, start_at="latest").start()
        began = time.monotonic()
        read = applied = 0
        for page in self.store.scan(segments=segments):
            read += len(page)
            applied += self._settle([Change.stored(event) for event in page])
            if on_progress is not None:
                on_progress(RebuildProgress(read, applied, time.monotonic() - began))
            if self._stopped.is_set():
                return RebuildProgress(read, applied, time.monotonic() - began)
        if follow:
            applied += self._follow(feed, stop_when_idle=stop_when_idle)
        progress = RebuildProgress(read, applied, time.monotonic() - began, done=True)
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
        parked = self.parked()
        chosen = parked if stream_ids is None else {s: parked[s] for s in stream_ids if s in parked}
        tally = Tally()
        for stream_id, progress in chosen.items():
            if self._replay_stream(stream_id, progress.version, tally):
                self.checkpoints.unpark(self.name, stream_id)
        outcome = tally.outcome()
        latest = [Change.stored(event) for stream_id in chosen for event in self._latest(stream_id)]
        after = self.handle(latest) if latest else BatchOutcome()
        return attrs.evolve(outcome, applied=outcome.applied + after.applied)

    def _replay_stream(self, stream_id: str, version: int, tally: Tally) -> bool:
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        applied = version
        try:
            for event in self.store.load(aggregate_id, aggregate_type, from_version=version + 1):
                try:
                    self._apply(Change.stored(event))
                except Exception as error:  # noqa: BLE001 (recorded with the stream, which stays parked)
                    self._save_applied(stream_id, applied)
                    text = f"{type(error).__name__}: {error}"
                    self.checkpoints.record_failure(self.name, stream_id, event.version, text, park_after=1)
                    tally.parked.append(stream_id)
                    return False
                tally.applied += 1
                applied = event.version
        finally:
            self._save_applied(stream_id, applied, after=version)
        return True

    def _save_applied(self, stream_id: str, version: int, *, after: int = 0) -> None:
        """Save a replayed stream's version, unless its effects' commits recorded it already."""
        if self.effects is None and version > after:
            self.checkpoints.save_versions(self.name, {stream_id: version})

    def _latest(self, stream_id: str) -> list[StoredEvent]:
        """The stream's newest event (what arrived while it was being replayed is gap-filled from it)."""
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        last = self.store.stream_version(aggregate_id, aggregate_type)
        return self.store.load(aggregate_id, aggregate_type, from_version=last) if last else []
