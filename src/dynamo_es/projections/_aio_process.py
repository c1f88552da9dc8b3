"""Async process managers: react to events by saving new ones through an AsyncUnitOfWork, exactly once."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs

from .._events import StoredEvent
from .._snapshots import AsyncSnapshotStore, SnapshotStrategy
from .._store import AsyncEventStore, Tracking
from ..app._async.unit import AsyncUnitOfWork
from ..app._checks import check_async_store, check_snapshot_options
from ._async.projection import AsyncProjection
from ._changes import Change
from ._checkpoints import AsyncCheckpointStore, CheckpointStore
from ._process import caused_by, policy_of
from ._reading import Selection
from ._rules import History

__all__ = ["AsyncPolicy", "AsyncTrackingStore", "AsyncUnitCommits", "async_process_manager"]

AsyncPolicy = Callable[[Change, AsyncUnitOfWork], Any]
"""An async process manager's reaction: a coroutine function (or a plain one) given the event and a unit of work."""


class AsyncTrackingStore(AsyncEventStore, Protocol):
    """An async event store that records tracking with its commits, readable as checkpoints."""

    @property
    def tracking(self) -> CheckpointStore | AsyncCheckpointStore:
        """The checkpoint store that sees the tracking records."""
        ...


@attrs.frozen
class AsyncUnitCommits:
    """The effect sink of an async process manager: commits the policy's unit with its tracking record."""

    store: AsyncEventStore

    async def commit_effects(self, name: str, event: StoredEvent, effects: Any) -> bool:
        """Commit the unit and the tracking of ``event`` in one transaction; False if tracked already."""
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
    """[`process_manager`][dynamo_es.process_manager] for async stores.

    It returns an [`AsyncProjection`][dynamo_es.aio.AsyncProjection]:
    ``policy(change, unit)`` changes aggregates through a fresh
    [`AsyncUnitOfWork`][dynamo_es.aio.AsyncUnitOfWork] (``await unit.get(...)``); its events and the
    tracking record of the upstream event are committed in one transaction, so a redelivered
    event changes nothing and a conflict re-runs the policy on fresh aggregates. ``policy`` and
    ``reads`` are as for the sync one (a function, or an object with ``@handles`` methods);
    ``snapshots`` and ``snapshot_strategy`` go to each unit, as for the sync one.
    """
    check_async_store(store)
    check_snapshot_options(snapshots, snapshot_strategy)
    react_to, selection = policy_of(name, policy, reads)

    async def react(change: Change) -> AsyncUnitOfWork:
        unit = AsyncUnitOfWork(store, snapshots=snapshots, snapshot_strategy=snapshot_strategy)
        reaction = react_to(change, unit)
        if inspect.isawaitable(reaction):
            await reaction
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
