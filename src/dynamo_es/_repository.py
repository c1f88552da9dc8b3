"""Repository: load aggregates by replaying their stream, save what they recorded."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import attrs
import cattrs

from ._aggregate import AggregateRoot
from ._events import EventMetadata
from ._retry import backoff_delay
from ._serialization import EventSerializer
from ._snapshots import Snapshot, SnapshotStore, SnapshotStrategy
from ._store import EventStore, check_version, make_stream_id
from .exceptions import AggregateClassError, AggregateNotFoundError, ConcurrencyError, ConfigurationError, DynamoESError

__all__ = [
    "SNAPSHOT_ERRORS",
    "Repository",
    "capture",
    "check_attempts",
    "check_class",
    "check_sync_store",
    "conflict_delay",
    "restore",
]

A = TypeVar("A", bound=AggregateRoot)

log = logging.getLogger("dynamo_es")

_RESTORE_ERRORS = (DynamoESError, cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError)


@attrs.define
class Repository(Generic[A]):
    """Loads and saves aggregates of one class through any [`EventStore`][dynamo_es.EventStore].

    ``Repository(BankAccount, store).get("acc-1")`` is typed as ``BankAccount``.

    Attributes:
        aggregate_class: the aggregate class; it must accept ``cls(aggregate_id)``.
        store: where the events live.
        snapshots: where snapshots live; with it, `get()` starts from the latest usable
            snapshot and replays only the events after it.
        snapshot_strategy: when `save()` takes a snapshot (e.g. ``EveryNEvents(100)``).
    """

    aggregate_class: type[A]
    store: EventStore = attrs.field(validator=lambda _, __, store: check_sync_store(store))
    snapshots: SnapshotStore | None = attrs.field(default=None, kw_only=True)
    snapshot_strategy: SnapshotStrategy | None = attrs.field(default=None, kw_only=True)

    def get(self, aggregate_id: str, *, version: int | None = None) -> A:
        """The aggregate rebuilt from its events; with ``version``, as it was at that version.

        With ``version`` past the end of the stream, the aggregate is at its latest version
        (check ``aggregate.version``).

        Raises:
            AggregateNotFoundError: the stream has no event (up to ``version``).
        """
        if version is not None:
            check_version("version", version, minimum=1)
        aggregate_type = self.aggregate_class.aggregate_type
        aggregate = self._from_snapshot(aggregate_id, version)
        if aggregate is not None:
            aggregate.replay(
                self.store.load(aggregate_id, aggregate_type, from_version=aggregate.version + 1, to_version=version)
            )
            return aggregate
        events = self.store.load(aggregate_id, aggregate_type, to_version=version)
        if not events:
            raise AggregateNotFoundError(aggregate_type, aggregate_id)
        aggregate = self.aggregate_class(aggregate_id)
        aggregate.replay(events)
        return aggregate

    def save(self, aggregate: A, *, metadata: EventMetadata | None = None) -> int:
        """Append the aggregate's uncommitted events; return its new version.

        The expected version is the one it was loaded (or last saved) at. Events go in the
        store's transactions of up to 100; with nothing uncommitted this is a no-op.
        ``metadata`` (correlation id, say) is laid over every event's own. A snapshot is taken
        afterwards when the strategy says so; a failed snapshot is logged, never raised.

        Raises:
            ConcurrencyError: another writer appended first; reload and retry the command.
            EventStoreError: the store failed (the aggregate keeps its uncommitted events).
        """
        check_class(self.aggregate_class, aggregate)
        if not aggregate.uncommitted_events:
            return aggregate.version
        previous = aggregate.committed_version
        result = self.store.append(
            aggregate.id, aggregate.aggregate_type, aggregate.uncommitted_events, previous, metadata=metadata
        )
        result.raise_for_failure()
        aggregate.mark_committed()
        if self.snapshot_strategy is not None and self.snapshot_strategy.should_snapshot(previous, result.new_version):
            self.take_snapshot(aggregate)
        return result.new_version

    def update(
        self,
        aggregate_id: str,
        command: Callable[[A], Any],
        *,
        attempts: int = 3,
        metadata: EventMetadata | None = None,
    ) -> A:
        """Load the aggregate, run ``command(aggregate)``, save; on a conflict, do it all again.

        The usual answer to `ConcurrencyError`: another writer saved first, so the command runs
        again on the fresh aggregate (its rules see the other writer's events), up to
        ``attempts`` times in all, with a short jittered pause between. Returns the saved aggregate.

        Raises:
            ConcurrencyError: the last attempt conflicted too.
            AggregateNotFoundError: the aggregate has no events (nothing to update).
        """
        check_attempts(attempts)
        attempt = 1
        while True:
            aggregate = self.get(aggregate_id)
            command(aggregate)
            try:
                self.save(aggregate, metadata=metadata)
            except ConcurrencyError:
                if attempt >= attempts:
                    raise
            else:
                return aggregate
            time.sleep(conflict_delay(attempt, aggregate))
            attempt += 1

    def take_snapshot(self, aggregate: A) -> Snapshot | None:
        """Snapshot the aggregate's committed state now; None (and a warning) if that fails."""
        check_class(self.aggregate_class, aggregate)
        if self.snapshots is None or aggregate.uncommitted_events:
            return None
        try:
            snapshot = capture(aggregate, self.store.serializer)
            self.snapshots.save(snapshot)
        except SNAPSHOT_ERRORS as error:
            log.warning("no snapshot of %r: %s", aggregate, error)
            return None
        return snapshot

    def _from_snapshot(self, aggregate_id: str, version: int | None) -> A | None:
        if self.snapshots is None:
            return None
        snapshot = self.snapshots.load_latest(self.aggregate_class.aggregate_type, aggregate_id, max_version=version)
        return restore(self.aggregate_class, aggregate_id, snapshot, self.store.serializer)

    def exists(self, aggregate_id: str) -> bool:
        """Whether the aggregate's stream holds any event."""
        return self.store.stream_version(aggregate_id, self.aggregate_class.aggregate_type) > 0


def check_class(aggregate_class: type[AggregateRoot], aggregate: AggregateRoot) -> None:
    """Refuse an aggregate that is not of the repository's class (it would be saved under another stream)."""
    if isinstance(aggregate, aggregate_class) and aggregate.aggregate_type == aggregate_class.aggregate_type:
        return
    kind = type(aggregate).__qualname__
    raise AggregateClassError(
        kind,
        f"a repository of {aggregate_class.__qualname__} cannot save it (its stream is "
        f"{make_stream_id(aggregate.aggregate_type, aggregate.id)}); use a repository of {kind}",
    )


def check_sync_store(store: object) -> None:
    """Refuse an async store where a sync one is needed (its results would be coroutines).

    Raises:
        ConfigurationError: ``store.load`` is a coroutine function.
    """
    if inspect.iscoroutinefunction(getattr(store, "load", None)):
        raise ConfigurationError(
            "store",
            f"{type(store).__name__} is an async event store; use AsyncRepository / AsyncUnitOfWork "
            "(dynamo_es.aio) with it, or a sync store (DynamoDBEventStore, InMemoryEventStore)",
        )


def check_attempts(attempts: int) -> None:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigurationError("attempts", f"must be an integer >= 1, not {attempts!r}")


def conflict_delay(attempt: int, what: object) -> float:
    """The pause before running a conflicted command again (logged at INFO)."""
    log.info("conflict on %r (attempt %d); running the command again", what, attempt)
    return backoff_delay(attempt - 1, 0.01, 0.2)


SNAPSHOT_ERRORS = (DynamoESError, TypeError, ValueError)
"""What a failed snapshot may raise: it is logged, never raised to the caller."""


def capture(aggregate: AggregateRoot, serializer: EventSerializer) -> Snapshot:
    """A snapshot of ``aggregate``'s committed state, serialized."""
    state = serializer.dumps(aggregate.snapshot_state(serializer.converter))
    return Snapshot(
        aggregate_type=aggregate.aggregate_type,
        aggregate_id=aggregate.id,
        version=aggregate.version,
        schema_version=aggregate.snapshot_version,
        state=state,
    )


def restore(cls: type[A], aggregate_id: str, snapshot: Snapshot | None, serializer: EventSerializer) -> A | None:
    """The aggregate restored from ``snapshot``; None (logged) for another schema or an unreadable state."""
    if snapshot is None:
        return None
    if snapshot.schema_version != cls.snapshot_version:
        log.info(
            "ignoring snapshot of %s:%s v%d: schema %d, class has %d",
            cls.aggregate_type, aggregate_id, snapshot.version, snapshot.schema_version, cls.snapshot_version,
        )  # fmt: skip
        return None
    aggregate = cls(aggregate_id)
    try:
        state = serializer.loads(snapshot.state, dict[str, Any])
        aggregate.restore_snapshot(state, snapshot.version, serializer.converter)
    except _RESTORE_ERRORS as error:
        log.warning(
            "ignoring unreadable snapshot of %s:%s v%d: %s", cls.aggregate_type, aggregate_id, snapshot.version, error
        )
        return None
    return aggregate
