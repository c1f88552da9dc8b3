"""Event classes, their type registry, metadata and the envelopes the store reads and writes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

import attrs

from ..exceptions import DuplicateEventTypeError, EventTypeError
from .lifecycle import (
    STREAM_ARCHIVED,
    STREAM_DELETED,
    STREAM_TRUNCATED,
    SUBJECT_FORGOTTEN,
    StreamArchived,
    StreamDeleted,
    StreamTruncated,
    SubjectForgotten,
)

__all__ = [
    "EventHistory",
    "EventMetadata",
    "EventRegistry",
    "NewEvent",
    "StoredEvent",
    "Upcaster",
    "default_registry",
    "event",
    "event_type_of",
    "upcaster",
]

T = TypeVar("T")
E = TypeVar("E")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns an event's serialized form (a JSON object) at one schema version into the next."""

_TYPE_ATTRIBUTE = "__dynamo_es_event_type__"
_VERSION_ATTRIBUTE = "__dynamo_es_schema_version__"


@attrs.frozen
class _EventType:
    name: str
    schema_version: int
    cls: type[Any]


@attrs.define
class EventRegistry:
    """Maps stable event type names to attrs classes, with their schema versions and upcasters.

    Every registry holds `StreamDeleted`, `StreamTruncated`, `StreamArchived` and `SubjectForgotten`, which
    dynamo-es writes itself.
    """

    _by_name: dict[str, _EventType] = attrs.field(factory=dict, init=False)
    _upcasters: dict[tuple[str, int], Upcaster] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.register(StreamDeleted, name=STREAM_DELETED)  # every registry reads a store's own marks
        self.register(StreamTruncated, name=STREAM_TRUNCATED)
        self.register(StreamArchived, name=STREAM_ARCHIVED)
        self.register(SubjectForgotten, name=SUBJECT_FORGOTTEN)

    def register(self, cls: type[T], *, name: str | None = None, version: int = 1) -> type[T]:
        """Register ``cls`` under ``name`` (default: the class name) at schema ``version``.

        Re-registering the same class (same module and qualified name, as when a module is
        re-executed) replaces the entry; a different class under a taken name is an error.

        Raises:
            EventTypeError: ``cls`` is not a frozen attrs class, or the name/version is bad.
            DuplicateEventTypeError: another class already holds ``name``.
        """
        if not attrs.has(cls):
            raise EventTypeError(f"{cls.__qualname__} must be an attrs class (decorate it with @attrs.frozen)")
        if not attrs.inspect(cls).is_frozen:
            raise EventTypeError(
                f"{cls.__qualname__} is not frozen: events are immutable history, and an event changed "
                "after it was recorded would differ from what is stored; decorate it with @attrs.frozen"
            )
        type_name = cls.__name__ if name is None else name
        if not type_name or ":" in type_name:
            raise EventTypeError(f"event type name {type_name!r} must be non-empty and contain no ':'")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise EventTypeError(f"schema version of {type_name!r} must be an integer >= 1, not {version!r}")
        with self._lock:
            existing = self._by_name.get(type_name)
            if existing is not None and _qualified(existing.cls) != _qualified(cls):
                raise DuplicateEventTypeError(type_name, _qualified(existing.cls), _qualified(cls))
            self._by_name[type_name] = _EventType(type_name, version, cls)
        setattr(cls, _TYPE_ATTRIBUTE, type_name)
        setattr(cls, _VERSION_ATTRIBUTE, version)
        return cls  # type: ignore[return-value]  # attrs.has() narrows to AttrsInstance

    def resolve(self, name: str) -> tuple[type[Any], int] | None:
        """The class and current schema version registered under ``name``, or None."""
        entry = self._by_name.get(name)
        return None if entry is None else (entry.cls, entry.schema_version)

    def add_upcaster(self, name: str, from_version: int, function: Upcaster) -> None:
        """Register ``function`` to turn ``name``'s data at ``from_version`` into ``from_version + 1``.

        Registering a function of the same module and qualified name again (a module
        re-executed by a reload or a notebook, edited or not) replaces it; a function of another
        name for the same step is an error.
        """
        with self._lock:
            existing = self._upcasters.get((name, from_version))
            if existing is not None and _qualified(existing) != _qualified(function):
                raise EventTypeError(
                    f"an upcaster for {name!r} from version {from_version} exists already "
                    f"({_qualified(existing)}); {_qualified(function)} would be a second one"
                )
            self._upcasters[(name, from_version)] = function

    def upcast(self, name: str, data: dict[str, Any], from_version: int, to_version: int) -> dict[str, Any]:
        """Apply the upcaster chain ``from_version`` -> ``to_version`` to serialized ``data``."""
        for step in range(from_version, to_version):
            function = self._upcasters.get((name, step))
            if function is None:
                raise EventTypeError(f"no upcaster registered for {name!r} from version {step} to {step + 1}")
            data = function(data)
        return data


default_registry = EventRegistry()
"""The registry that [`event()`][dynamo_es.event] and [`upcaster()`][dynamo_es.upcaster] use unless given another."""


def _qualified(named: Any) -> str:
    return f"{named.__module__}.{named.__qualname__}"


@overload
def event(cls: type[T], /) -> type[T]: ...


@overload
def event(
    *, name: str | None = None, version: int = 1, registry: EventRegistry | None = None
) -> Callable[[type[T]], type[T]]: ...


def event(
    cls: type[T] | None = None,
    /,
    *,
    name: str | None = None,
    version: int = 1,
    registry: EventRegistry | None = None,
) -> type[T] | Callable[[type[T]], type[T]]:
    """Class decorator that registers an attrs event class under a stable type name.

    Use it bare (``@event``) or with options (``@event(name="Deposited", version=2)``), above
    ``@attrs.frozen``. The name is what the ``eventType`` attribute stores; it defaults to the
    class name, so set it explicitly before renaming a class with stored events.
    """
    target = default_registry if registry is None else registry

    def decorate(klass: type[T]) -> type[T]:
        return target.register(klass, name=name, version=version)

    return decorate if cls is None else decorate(cls)


def upcaster(name: str, *, from_version: int, registry: EventRegistry | None = None) -> Callable[[Upcaster], Upcaster]:
    """Decorator registering a function that upgrades event ``name`` from ``from_version`` by one.

    The function receives the stored JSON object and returns the object of the next version.
    """
    target = default_registry if registry is None else registry

    def decorate(function: Upcaster) -> Upcaster:
        target.add_upcaster(name, from_version, function)
        return function

    return decorate


def event_type_of(obj_or_cls: object) -> tuple[str, int]:
    """The registered type name and schema version of an event instance or class."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    name = getattr(cls, _TYPE_ATTRIBUTE, None)
    if name is None or _TYPE_ATTRIBUTE not in cls.__dict__:
        raise EventTypeError(f"{cls.__qualname__} is not a registered event; decorate it with @event")
    return name, getattr(cls, _VERSION_ATTRIBUTE)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return str(uuid.uuid4())


@attrs.frozen(kw_only=True)
class EventMetadata:
    """Metadata stored with each event, as JSON in the ``metadata`` attribute.

    ``correlation_id`` ties together everything caused by one request; ``causation_id`` names
    the message (command or event) that caused this one. ``trace_parent`` is the W3C
    ``traceparent`` of the span the event was written in (set by the store when OpenTelemetry
    traces the append), so its readers continue that trace. ``extra`` holds your own JSON-safe keys.
    """

    correlation_id: str | None = None
    causation_id: str | None = None
    trace_parent: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def merged_with(self, other: EventMetadata | None) -> EventMetadata:
        """This metadata with ``other``'s set fields laid over it."""
        if other is None:
            return self
        return EventMetadata(
            correlation_id=other.correlation_id or self.correlation_id,
            causation_id=other.causation_id or self.causation_id,
            trace_parent=other.trace_parent or self.trace_parent,
            extra={**self.extra, **other.extra},
        )


@attrs.frozen
class NewEvent:
    """An event about to be appended, with the identity it keeps across retries.

    ``event_id`` and ``timestamp`` are fixed when the envelope is made, so appending the same
    envelope again (after a timeout, say) is recognised as the same write, not a conflict.
    """

    event: Any
    event_id: str = attrs.field(factory=_new_id, kw_only=True)
    timestamp: datetime = attrs.field(factory=_utc_now, kw_only=True)
    metadata: EventMetadata = attrs.field(factory=EventMetadata, kw_only=True)


@attrs.frozen(kw_only=True)
class StoredEvent:
    """An event as read back from a store: the decoded event plus its envelope."""

    stream_id: str
    aggregate_id: str
    aggregate_type: str
    version: int
    event_id: str
    event_type: str
    timestamp: datetime
    event: Any
    metadata: EventMetadata
    is_dispatched: bool = False


@attrs.frozen
class EventHistory:
    """A stream's events as a replay needs them: the decoded events in version order, no envelopes.

    What [`load_history()`][dynamo_es.ReplayableStore] returns and
    [`AggregateRoot.replay()`][dynamo_es.AggregateRoot.replay] takes. Versions are consecutive, so
    the version of the last event is all a replay needs besides the events.

    Attributes:
        events: the decoded events (the ``event`` of each `StoredEvent` a ``load`` would give).
        version: the version of the last of them; 0 when there are none.
    """

    events: tuple[Any, ...]
    version: int

    def __len__(self) -> int:
        """How many events the history holds."""
        return len(self.events)

    def split(self, size: int) -> list[EventHistory]:
        """This history as consecutive parts of at most ``size`` events (none when it is empty)."""
        first = self.version - len(self.events)
        return [
            EventHistory(self.events[start : start + size], first + min(start + size, len(self.events)))
            for start in range(0, len(self.events), size)
        ]
