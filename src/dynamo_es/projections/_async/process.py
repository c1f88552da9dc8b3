"""Process managers: react to events by saving new ones, exactly once per upstream event."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ...app._async.unit import AsyncUnitOfWork
from ...app._checks import check_async_store, check_snapshot_options
from ...core.backends.asyncio import awaited
from ...core.changes import Change
from ...core.reading import Selection
from ...domain.events import StoredEvent
from ...ports.checkpoints import AsyncTrackingStore
from ...ports.snapshots import AsyncSnapshotStore, SnapshotStrategy
from ...ports.store import AsyncEventStore, Tracking
from .._handlers import caused_by, policy_of
from .._rules import History
from .projection import AsyncProjection

__all__ = ["AsyncPolicy", "AsyncUnitCommits", "async_process_manager"]

AsyncPolicy = Callable[[Change, AsyncUnitOfWork], Any]
"""A process manager's reaction: given an upstream event, change aggregates through the unit of work.

The async process manager awaits a policy that returns an awaitable (a coroutine function).
"""


@attrs.frozen
class AsyncUnitCommits:
    """The effect sink of a process manager: commits the policy's unit of work with its tracking record."""

    store: AsyncEventStore
    span_name = "dynamo_es.react"
    """The name of the span of each reaction (see ``HANDLE_SPAN``)."""

    async def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Commit the unit's aggregates and the tracking of ``event`` in one transaction; False if tracked already.

        New events name the upstream event as their cause and keep its correlation id.
        """
        unit = effects if isinstance(effects, AsyncUnitOfWork) else AsyncUnitOfWork(self.store)
        tracking = Tracking(name, event.stream_id, event.version)
        result = await unit.commit(metadata=caused_by(event), tracking=tracking)
        return not result.already_processed


def async_process_manager(
    name: str,
    policy: Any,
    store: AsyncTrackingStore,
    *,
    history: History = "replay",
    max_attempts: int | None = 3,
    retry_delay: float = 0.2,
    reads: Selection | Iterable[type[Any] | str] | None = None,
    snapshots: AsyncSnapshotStore | None = None,
    snapshot_strategy: SnapshotStrategy | None = None,
) -> AsyncProjection:
    """A projection running ``policy`` per event, committing what it changed exactly once.

    For each upstream event, ``policy(change, unit)`` loads and changes aggregates through a
    fresh [`AsyncUnitOfWork`][dynamo_es.aio.AsyncUnitOfWork]; the unit's events and a tracking
    record of the upstream event (``name``, stream, version) are committed in one transaction.
    A redelivered event (a retry, a second worker, a Lambda replay) finds its tracking record
    and changes nothing; a conflict with another writer re-runs the policy on fresh aggregates.
    Events arrive per upstream aggregate in version order, with gaps filled, as for every projection.

    Run it like any projection: ``handle`` (AWS Lambda), ``run`` or ``rebuild``. Its checkpoints
    are ``store.tracking``.

    ``policy`` is a function, reading what ``reads`` selects (everything by default), or an
    object whose [`@handles`][dynamo_es.handles] methods take ``(change, unit)`` per event class
    and so declare what it reads.

    With ``snapshots``, each unit loads the aggregates from their latest snapshots, and with a
    ``snapshot_strategy`` it takes new ones after its commit: the aggregates a process manager
    changes on every event are the ones that most need them. The async process manager
    awaits a policy that is a coroutine function.
    """
    check_async_store(store)
    check_snapshot_options(snapshots, snapshot_strategy)
    react_to, selection = policy_of(name, policy, reads)

    async def react(change: Change) -> AsyncUnitOfWork:
        unit = AsyncUnitOfWork(store, snapshots=snapshots, snapshot_strategy=snapshot_strategy)
        await awaited(react_to(change, unit))
        return unit

    return AsyncProjection(
        name,
        react,
        store.tracking,
        store,
        history=history,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
        effects=AsyncUnitCommits(store),
        reads=selection,
    )
