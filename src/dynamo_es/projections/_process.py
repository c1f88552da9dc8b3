"""Process managers: react to events by saving new ones, exactly once per upstream event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs

from .._events import EventMetadata, StoredEvent
from .._snapshots import SnapshotStore, SnapshotStrategy
from .._store import EventStore, Tracking
from ..app._checks import check_snapshot_options, check_sync_store
from ..app._sync.unit import UnitOfWork
from ._changes import Change
from ._checkpoints import CheckpointStore
from ._handlers import handler_of
from ._reading import Selection, to_selection
from ._rules import History
from ._sync.projection import Projection

__all__ = ["Policy", "TrackingStore", "UnitCommits", "caused_by", "process_manager"]

Policy = Callable[[Change, UnitOfWork], Any]
"""A process manager's reaction: given an upstream event, change aggregates through the unit of work."""


class TrackingStore(EventStore, Protocol):
    """An event store that records [`Tracking`][dynamo_es.Tracking] with its commits, readable as checkpoints."""

    @property
    def tracking(self) -> CheckpointStore:
        """The checkpoint store that sees the tracking records (a process manager's checkpoints)."""
        ...


@attrs.frozen
class UnitCommits:
    """The effect sink of a process manager: commits the policy's unit of work with its tracking record."""

    store: EventStore

    def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Commit the unit's aggregates and the tracking of ``event`` in one transaction; False if tracked already.

        New events name the upstream event as their cause and keep its correlation id.
        """
        unit = effects if isinstance(effects, UnitOfWork) else UnitOfWork(self.store)
        result = unit.commit(metadata=caused_by(event), tracking=Tracking(name, event.stream_id, event.version))
        return not result.already_processed


def caused_by(event: StoredEvent) -> EventMetadata:
    """Metadata of what a process manager saves in reaction to ``event``: its cause, and its correlation id."""
    return EventMetadata(correlation_id=event.metadata.correlation_id or event.event_id, causation_id=event.event_id)


def process_manager(
    name: str,
    policy: Any,
    store: TrackingStore,
    *,
    history: History = "replay",
    max_attempts: int | None = 3,
    retry_delay: float = 0.2,
    reads: Selection | Iterable[type[Any] | str] | None = None,
    snapshots: SnapshotStore | None = None,
    snapshot_strategy: SnapshotStrategy | None = None,
) -> Projection:
    """A [`Projection`][dynamo_es.Projection] running ``policy`` per event, committing what it changed exactly once.

    For each upstream event, ``policy(change, unit)`` loads and changes aggregates through a
    fresh [`UnitOfWork`][dynamo_es.UnitOfWork]; the unit's events and a tracking record of the upstream event
    (``name``, stream, version) are committed in one transaction. A redelivered event (a retry,
    a second worker, a Lambda replay) finds its tracking record and changes nothing; a conflict
    with another writer re-runs the policy on fresh aggregates. Events arrive per upstream
    aggregate in version order, with gaps filled, as for every projection.

    Run it like any projection: ``handle`` (AWS Lambda), ``run`` or ``rebuild``. Its checkpoints
    are ``store.tracking``.

    ``policy`` is a function, reading what ``reads`` selects (everything by default), or an
    object whose [`@handles`][dynamo_es.handles] methods take ``(change, unit)`` per event class
    and so declare what it reads.

    With ``snapshots``, each unit loads the aggregates from their latest snapshots, and with a
    ``snapshot_strategy`` it takes new ones after its commit: the aggregates a process manager
    changes on every event are the ones that most need them.
    """
    check_sync_store(store)
    check_snapshot_options(snapshots, snapshot_strategy)
    react_to, selection = policy_of(name, policy, reads)

    def react(change: Change) -> UnitOfWork:
        unit = UnitOfWork(store, snapshots=snapshots, snapshot_strategy=snapshot_strategy)
        react_to(change, unit)
        return unit

    return Projection(
        name,
        react,
        store.tracking,
        store,
        history=history,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
        effects=UnitCommits(store),
        reads=selection,
    )


def policy_of(
    name: str, policy: Any, reads: Selection | Iterable[type[Any] | str] | None
) -> tuple[Callable[..., Any], Selection]:
    """The callable a process manager runs per change and what it reads (from ``reads`` or ``@handles``)."""
    return handler_of(policy, None if reads is None else to_selection(reads), owner=f"process manager {name!r}")
