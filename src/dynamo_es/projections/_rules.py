"""A projection's rules as steps: ordering, gap filling, failures, parking, replays -- written once.

`Projection` runs them with `run_steps()` on its sync store, checkpoint store and handler;
`AsyncProjection` with `run_steps_async()`, awaiting whichever of those is async. So the
two cannot drift: both apply each aggregate's events in version order, each once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Protocol

import attrs

from ..core.changes import Change, ChangeKind
from ..core.reading import Selection
from ..core.retry import backoff_delay
from ..core.steps import Steps, Use
from ..domain.lifecycle import StreamDeleted
from ..exceptions import ConcurrencyError, ConfigurationError, ProjectionError, UnknownEventTypeError
from ..observability import tracing
from ..observability.logs import log_fields
from ..observability.metrics import observe_batch
from ..ports.checkpoints import EitherCheckpointStore, EitherEffectSink, StreamProgress, sequence_key
from ..ports.store import AsyncEventStore, EventStore
from ._batch import BatchOutcome, Tally, group_changes

__all__ = ["History", "ProjectionPorts", "handle_steps", "replay_parked_steps", "settle_steps"]

log = logging.getLogger("dynamo_es.projections")

History = Literal["replay", "baseline"]
"""For an aggregate the projection has never seen: apply its whole history first ("replay"), or
take the first version that arrives as the starting point ("baseline", for notifiers that must
not act on the past)."""

HANDLE_SPAN = "dynamo_es.handle"
"""The span of one handler call; a process manager's reaction is ``dynamo_es.react`` (its sink's ``span_name``)."""

_CONFLICT_RETRIES = 3
"""How often a handler whose effects met a ConcurrencyError runs again at once, before it counts as failed."""


class ProjectionPorts(Protocol):
    """What the rules use of a projection: its settings, and its ports (sync or async)."""

    name: str
    handler: Callable[[Change], Any]
    kinds: frozenset[ChangeKind]
    history: History
    max_attempts: int | None
    retry_delay: float
    selection: Selection

    @property
    def checkpoints(self) -> EitherCheckpointStore:
        """Where positions, versions and failures are saved."""
        ...

    @property
    def store(self) -> EventStore | AsyncEventStore:
        """The event store gaps are filled from."""
        ...

    @property
    def effects(self) -> EitherEffectSink | None:
        """Where a handler's returned effects commit with its checkpoint, if anywhere."""
        ...

    @property
    def _stopping(self) -> bool:
        """Whether stop() was called."""
        ...

    def _pause(self, seconds: float) -> Any:
        """Wait ``seconds`` (less once stopped); may be a coroutine function."""
        ...


def handle_steps(p: ProjectionPorts, changes: Sequence[Change]) -> Steps[BatchOutcome]:
    """`Projection.handle`: apply ``changes`` by the rules and save the versions applied (in a span of the batch)."""
    with tracing.batch(p.name, len(changes)) as span:
        outcome = yield from _handle_batch(p, changes)
        tracing.set_attributes(span, _outcome_attributes(outcome))
    observe_batch(p.name, changes, outcome)
    return outcome


def _outcome_attributes(outcome: BatchOutcome) -> dict[str, int]:
    return {
        "dynamo_es.applied": outcome.applied,
        "dynamo_es.skipped": outcome.skipped,
        "dynamo_es.failed": len(outcome.failed),
        "dynamo_es.parked": len(outcome.parked),
    }


def _handle_batch(p: ProjectionPorts, changes: Sequence[Change]) -> Steps[BatchOutcome]:
    groups, unwanted = group_changes(changes, p.kinds)
    tally = Tally(skipped=unwanted)
    _drop_unread_groups(p, groups, tally)
    progress = (yield Use(p.checkpoints.load_progress, p.name, groups)) if groups else {}
    try:
        for stream_id, group in groups.items():
            yield from _apply_stream(p, group, progress.get(stream_id), tally)
    except GeneratorExit:
        raise  # closed: nothing may run any more
    except BaseException:
        yield from _save_versions(p, tally)  # what was applied before an error (or a cancellation) is kept
        raise
    yield from _save_versions(p, tally)
    return tally.outcome()


def is_unread(p: ProjectionPorts, change: Change) -> bool:
    """Whether ``change`` is outside what the projection reads (the source may not have said so)."""
    return change.unread or not p.selection.selects(change.event.aggregate_type, change.event.event_type)


def _drop_unread_groups(p: ProjectionPorts, groups: dict[str, list[Change]], tally: Tally) -> None:
    """Skip, with no checkpoint read or write, the streams of which this batch holds nothing the projection reads.

    Their next read event fills the gap from the store, skipping the unread versions there.
    """
    if p.selection.everything:
        return
    for stream_id in [s for s, group in groups.items() if all(is_unread(p, change) for change in group)]:
        count = len(groups.pop(stream_id))
        tally.skipped += count
        tally.unread += count


def _save_versions(p: ProjectionPorts, tally: Tally) -> Steps[None]:
    if tally.versions:
        yield Use(p.checkpoints.save_versions, p.name, tally.versions)


def _apply_stream(p: ProjectionPorts, group: list[Change], known: StreamProgress | None, tally: Tally) -> Steps[None]:
    state = known or StreamProgress()
    if state.parked:
        tally.skipped += len(group)
        return
    last = state.version
    if last == 0 and p.history == "baseline" and group[0].kind is ChangeKind.INSERT:
        last = group[0].event.version - 1  # nothing applied yet (a failure may have been counted)
    for index, change in enumerate(group):
        if change.kind is ChangeKind.INSERT and change.event.version <= last:
            tally.skipped += 1
            continue
        applied = yield from _apply_change(p, change, last, tally)
        if applied is None:
            _report_failure(group[index:], tally)
            return
        last = applied


def _report_failure(unapplied: list[Change], tally: Tally) -> None:
    """Ask for the unapplied changes again, from the lowest sequence number among them.

    Versions are applied in order, but a later version may have arrived at a lower sequence
    number; Lambda redelivers everything after the lowest reported one.
    """
    tally.skipped += len(unapplied) - 1
    if tally.parked and tally.parked[-1] == unapplied[0].event.stream_id:
        return
    tally.failed.append(min(unapplied, key=lambda change: sequence_key(change.sequence_number)))


def _apply_change(p: ProjectionPorts, change: Change, last: int, tally: Tally) -> Steps[int | None]:
    """Apply ``change`` (after the versions missing before it); the last version applied, or None."""
    if change.kind is not ChangeKind.INSERT:
        return last if (yield from _call(p, change, tally)) else None
    event = change.event
    if event.version > last + 1 and not isinstance(event.event, StreamDeleted):  # a deletion's gap is deleted
        for stored in (yield from read_stream(p, event.stream_id, last + 1, event.version - 1)):
            if not (yield from _call(p, stored, tally)):
                return None
            tally.backfilled += not is_unread(p, stored)
            last = stored.event.version
    return event.version if (yield from _call(p, change, tally)) else None


def read_stream(p: ProjectionPorts, stream_id: str, first: int, last: int | None = None) -> Steps[list[Change]]:
    """Versions ``first`` to ``last`` of a stream as changes: unread ones undecoded, bad ones with their error."""
    aggregate_type, _, aggregate_id = stream_id.partition(":")
    read_changes = getattr(p.store, "read_changes", None)
    if read_changes is None:  # a store of the user's own, without read_changes: a strict load
        events = yield Use(p.store.load, aggregate_id, aggregate_type, from_version=first, to_version=last)
        return [Change.stored(stored) for stored in events]
    changes: list[Change] = yield Use(
        read_changes, aggregate_id, aggregate_type, from_version=first, to_version=last, reads=p.selection
    )
    return changes


def _call(p: ProjectionPorts, change: Change, tally: Tally) -> Steps[bool]:
    event = change.event
    if is_unread(p, change):
        _skip_unread(change, tally)
        return True
    try:
        applied = yield from apply_steps(p, change)
    except ConfigurationError:
        raise  # the projection is built wrong: no event can fix that
    except Exception as error:  # noqa: BLE001 (a read model's handler may raise anything; it is recorded)
        insert = change.kind is ChangeKind.INSERT
        if (yield from _failed(p, event.stream_id, event.version, error, tally, insert=insert)):
            return False
        applied = False
    if not applied:
        tally.skipped += 1  # applied meanwhile, by another worker: its record said so
        return True
    tally.applied_one(event.timestamp)
    if change.kind is ChangeKind.INSERT and p.effects is None:
        tally.versions[event.stream_id] = event.version
    return True


def _skip_unread(change: Change, tally: Tally) -> None:
    """An unread version moves its stream's applied version forward: the stream never waits for it."""
    tally.skipped += 1
    tally.unread += 1
    if change.kind is ChangeKind.INSERT:
        tally.versions[change.event.stream_id] = change.event.version


def apply_steps(p: ProjectionPorts, change: Change) -> Steps[bool]:
    """Run the handler (and commit its effects); False when the effects' record says it was applied.

    Raises:
        ConfigurationError: a handler without ``effects`` returned something: it would be dropped.
        DynamoESError: the change carries the error of a record that could not be decoded.
    """
    with tracing.handling(getattr(p.effects, "span_name", HANDLE_SPAN), p.name, change.event):
        return (yield from _apply(p, change))


def _apply(p: ProjectionPorts, change: Change) -> Steps[bool]:
    if change.error is not None:
        raise change.error
    if p.effects is None:
        returned = yield Use(p.handler, change)
        if returned is not None:
            raise _dropped(p.name, change, returned)
        return True
    for attempt in range(1, _CONFLICT_RETRIES + 1):
        effects = yield Use(p.handler, change)
        try:
            committed: bool = yield Use(p.effects.commit_effects, p.name, change.event, effects)
        except ConcurrencyError:
            if attempt == _CONFLICT_RETRIES:
                raise
            event = change.event
            fields = log_fields(event.stream_id, event.version, projection=p.name, attempt=attempt)
            message = "%s: %s v%d met a concurrent write; handling it again"
            log.info(message, p.name, event.stream_id, event.version, extra=fields)
        else:
            return committed
    raise AssertionError("unreachable")  # pragma: no cover


def _dropped(name: str, change: Change, returned: Any) -> ConfigurationError:
    event = change.event
    return ConfigurationError(
        "effects",
        f"projection {name!r}: the handler returned {type(returned).__name__} for {event.stream_id} "
        f"v{event.version}, and a projection without effects= drops what its handler returns; to commit "
        "read-model writes with the checkpoint, build it with effects=<the checkpoint store> "
        "(DynamoDBCheckpointStore commits PutItem/UpdateItem/DeleteItem/ConditionCheck), "
        "or return None",
    )


def _failed(
    p: ProjectionPorts, stream_id: str, version: int, error: Exception, tally: Tally, *, insert: bool = True
) -> Steps[bool]:
    """Count the failure (parking the stream at ``max_attempts``); False when the insert was applied meanwhile."""
    if tally.versions:  # what was applied before the failure is saved before the failure is counted
        yield Use(p.checkpoints.save_versions, p.name, dict(tally.versions))
        tally.versions.clear()  # saved: handle() saves only what comes after
    text = f"{type(error).__name__}: {error}"
    failures = yield Use(p.checkpoints.record_failure, p.name, stream_id, version, text, park_after=p.max_attempts)
    if failures == 0 and insert:  # another worker applied it meanwhile: this attempt's error does not matter
        fields = log_fields(stream_id, version, projection=p.name)
        message = "%s: %s v%d was applied by another worker meanwhile (%s)"
        log.info(message, p.name, stream_id, version, text, extra=fields)
        return False
    if p.max_attempts is not None and failures >= p.max_attempts:
        fields = log_fields(stream_id, version, projection=p.name, attempt=failures)
        message = "%s: parked %s at v%d after %d failures: %s"
        log.error(message, p.name, stream_id, version, failures, text, extra=fields)
        if isinstance(error, UnknownEventTypeError) and p.selection.event_types is None:
            log.error(
                "%s: to skip event types it does not read, give it reads= or a handler with @handles",
                p.name,
            )
        tally.parked.append(stream_id)
        return True
    fields = log_fields(stream_id, version, projection=p.name, attempt=failures)
    log.warning("%s: %s v%d failed (attempt %d): %s", p.name, stream_id, version, failures, text, extra=fields)
    failure = ProjectionError(p.name, stream_id, version, tally.applied)
    failure.__cause__ = error
    tally.errors.append(failure)
    return True


def settle_steps(p: ProjectionPorts, batch: Sequence[Change]) -> Steps[int]:
    """Handle ``batch`` until nothing in it is left failing (applied, or parked); how many were applied."""
    applied = retry = 0
    while True:
        outcome = yield from handle_steps(p, batch)
        applied += outcome.applied
        if not outcome.failed:
            return applied
        if p.max_attempts is None or p._stopping:
            raise outcome.errors[0]
        yield Use(p._pause, backoff_delay(retry, p.retry_delay, 30.0))
        retry += 1


def replay_parked_steps(p: ProjectionPorts, stream_ids: Iterable[str] | None) -> Steps[BatchOutcome]:
    """`Projection.replay_parked`: apply parked streams' events after their last version, then unpark them."""
    parked = yield Use(p.checkpoints.parked, p.name)
    chosen = parked if stream_ids is None else {s: parked[s] for s in stream_ids if s in parked}
    tally = Tally()
    for stream_id, progress in chosen.items():
        if (yield from _replay_stream(p, stream_id, progress.version, tally)):
            yield Use(p.checkpoints.unpark, p.name, stream_id)
    outcome = tally.outcome()
    latest: list[Change] = []
    for stream_id in chosen:
        latest.extend((yield from _latest(p, stream_id)))
    after = (yield from handle_steps(p, latest)) if latest else BatchOutcome()
    return attrs.evolve(
        outcome,
        applied=outcome.applied + after.applied,
        skipped=outcome.skipped + after.skipped,
        unread=outcome.unread + after.unread,
    )


def _replay_stream(p: ProjectionPorts, stream_id: str, version: int, tally: Tally) -> Steps[bool]:
    applied = version
    try:
        for change in (yield from read_stream(p, stream_id, version + 1)):
            event = change.event
            if is_unread(p, change):
                _skip_unread(change, tally)
                applied = event.version
                continue
            try:
                yield from apply_steps(p, change)
            except ConfigurationError:
                raise
            except Exception as error:  # noqa: BLE001 (recorded with the stream, which stays parked)
                yield from _save_applied(p, stream_id, applied, force=True)
                text = f"{type(error).__name__}: {error}"
                yield Use(p.checkpoints.record_failure, p.name, stream_id, event.version, text, park_after=1)
                tally.parked.append(stream_id)
                return False
            tally.applied_one(event.timestamp)
            applied = event.version
    except GeneratorExit:
        raise
    except BaseException:
        yield from _save_applied(p, stream_id, applied, after=version)
        raise
    yield from _save_applied(p, stream_id, applied, after=version, force=True)
    return True


def _save_applied(
    p: ProjectionPorts, stream_id: str, version: int, *, after: int = 0, force: bool = False
) -> Steps[None]:
    """Save a replayed stream's version, unless its effects' commits recorded it already.

    With ``force`` it is saved anyway (monotonic, so harmless): unread versions have no commit of their own.
    """
    if (p.effects is None or force) and version > after:
        yield Use(p.checkpoints.save_versions, p.name, {stream_id: version})


def _latest(p: ProjectionPorts, stream_id: str) -> Steps[list[Change]]:
    """The stream's newest event (what arrived while it was being replayed is gap-filled from it)."""
    aggregate_type, _, aggregate_id = stream_id.partition(":")
    last = yield Use(p.store.stream_version, aggregate_id, aggregate_type)
    if not last:
        return []
    return (yield from read_stream(p, stream_id, last))
