"""What repositories and units of work check and share, sync and async: snapshots, classes, stores, attempts."""

from __future__ import annotations

import inspect
import logging
from typing import Any, TypeVar

import cattrs

from ..core.retry import backoff_delay
from ..core.serialization import EventSerializer
from ..domain.aggregate import AggregateRoot
from ..domain.personal import SEALED_STATE, subject_field_of
from ..exceptions import AggregateClassError, ConfigurationError, DynamoESError
from ..observability.logs import log_fields
from ..ports.snapshots import Snapshot
from ..ports.store import make_stream_id

__all__ = [
    "SNAPSHOT_ERRORS",
    "capture",
    "check_async_outbox",
    "check_async_store",
    "check_attempts",
    "check_class",
    "check_snapshot_options",
    "check_sync_outbox",
    "check_sync_store",
    "conflict_delay",
    "restore",
]

A = TypeVar("A", bound=AggregateRoot)

log = logging.getLogger("dynamo_es")

_RESTORE_ERRORS = (DynamoESError, cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError)


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


def check_attempts(attempts: int) -> None:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigurationError("attempts", f"must be an integer >= 1, not {attempts!r}")


def conflict_delay(attempt: int, what: object) -> float:
    """The pause before running a conflicted command again (logged at INFO)."""
    log.info("conflict on %r (attempt %d); running the command again", what, attempt, extra=log_fields(attempt=attempt))
    return backoff_delay(attempt - 1, 0.01, 0.2)


SNAPSHOT_ERRORS = (DynamoESError, TypeError, ValueError)
"""What a failed snapshot may raise: it is logged, never raised to the caller."""


def capture(aggregate: AggregateRoot, serializer: EventSerializer) -> Snapshot:
    """A snapshot of ``aggregate``'s committed state, serialized.

    With a shredder, the state of an aggregate whose events carried personal data is sealed
    with each subject's key (`AggregateRoot.personal_subjects`).
    """
    state = serializer.dumps(aggregate.snapshot_state(serializer.converter))
    if aggregate.personal_subjects and serializer.shredder is not None:
        context = f"{aggregate.aggregate_type}:{aggregate.id}@{aggregate.version}"
        state = serializer.shredder.seal_state(sorted(aggregate.personal_subjects), state, context=context)
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
        opened = _opened_state(cls, snapshot, serializer)
        if opened is None:
            log.info("ignoring sealed snapshot of %s:%s v%d: a subject is forgotten, or no shredder",
                     cls.aggregate_type, aggregate_id, snapshot.version)  # fmt: skip
            return None
        state = serializer.loads(opened[0], dict[str, Any])
        aggregate.restore_snapshot(state, snapshot.version, serializer.converter)
        aggregate.add_personal_subjects(opened[1])
    except _RESTORE_ERRORS as error:
        log.warning(
            "ignoring unreadable snapshot of %s:%s v%d: %s", cls.aggregate_type, aggregate_id, snapshot.version, error
        )
        return None
    return aggregate


def _opened_state(
    cls: type[AggregateRoot], snapshot: Snapshot, serializer: EventSerializer
) -> tuple[str, list[str]] | None:
    """The snapshot's state text and subjects; None when it cannot be used here.

    Sealed and no shredder, a subject forgotten, or (with a shredder) unsealed although the class
    applies events with personal data: a snapshot from before sealing, whose subjects are not
    known, so every later snapshot would be unsealed too.
    """
    if serializer.shredder is not None:
        opened = serializer.shredder.open_state(snapshot.state, context=_context(snapshot))
        if opened is not None and not opened[1] and holds_personal_data(cls):
            return None
        return opened
    if is_sealed(snapshot):
        return None  # sealed, and no shredder: the events give the placeholders instead
    return snapshot.state, []


def _context(snapshot: Snapshot) -> str:
    """What a sealed state is bound to: its aggregate and version (it opens on no other)."""
    return f"{snapshot.aggregate_type}:{snapshot.aggregate_id}@{snapshot.version}"


def holds_personal_data(cls: type[AggregateRoot]) -> bool:
    """Whether ``cls`` applies an event class with personal data (so its state may hold some)."""
    return any(subject_field_of(event_class) is not None for event_class in cls._handlers)


def is_sealed(snapshot: Snapshot) -> bool:
    """Whether the snapshot's state is sealed with its subjects' keys."""
    return snapshot.state.startswith('{"' + SEALED_STATE)


def check_snapshot_options(snapshots: object | None, strategy: object | None) -> None:
    """Refuse a snapshot strategy without a snapshot store: it would never take a snapshot.

    Raises:
        ConfigurationError: ``strategy`` is given and ``snapshots`` is not.
    """
    if strategy is not None and snapshots is None:
        raise ConfigurationError("snapshot_strategy", "needs snapshots= (a snapshot store) to take snapshots into")


def _check_kind(store: object, method: str, *, want_async: bool, fix: str) -> None:
    """Refuse a store of the other kind: ``store.<method>`` is a coroutine function exactly when async."""
    if inspect.iscoroutinefunction(getattr(store, method, None)) != want_async:
        kind = "not an async" if want_async else "an async"
        raise ConfigurationError("store", f"{type(store).__name__} is {kind} {fix}")


def check_sync_store(store: object) -> None:
    """Refuse an async event store where a sync one is needed (its results would be coroutines)."""
    _check_kind(
        store,
        "load",
        want_async=False,
        fix="event store; use AsyncRepository / AsyncUnitOfWork (dynamo_es.aio) with it, "
        "or a sync store (DynamoDBEventStore, InMemoryEventStore)",
    )


def check_async_store(store: object) -> None:
    """Refuse a sync event store where an async one is needed (awaiting its results would fail later)."""
    _check_kind(
        store,
        "load",
        want_async=True,
        fix="event store; use AsyncDynamoDBEventStore (dynamo_es.dynamodb.aio) "
        "or AsyncInMemoryEventStore (dynamo_es.aio)",
    )


def check_sync_outbox(store: object) -> None:
    """Refuse an async store for a sync outbox dispatcher (its pages would be async generators)."""
    _check_kind(
        store, "mark_dispatched", want_async=False, fix="store; use AsyncOutboxDispatcher (dynamo_es.aio) with it"
    )


def check_async_outbox(store: object) -> None:
    """Refuse a sync store for an async outbox dispatcher."""
    _check_kind(store, "mark_dispatched", want_async=True, fix="store; use OutboxDispatcher (dynamo_es) with it")
