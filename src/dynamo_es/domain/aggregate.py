"""AggregateRoot: state rebuilt from events, commands that record new ones. No I/O here."""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

import cattrs

from ..exceptions import AggregateClassError, EventTypeError, InvalidStreamError, MissingHandlerError, SnapshotError
from .events import EventHistory, EventMetadata, NewEvent, StoredEvent, event_type_of
from .personal import subject_field_of
from .streams import make_stream_id

__all__ = ["AggregateRoot", "applies"]

F = TypeVar("F", bound=Callable[..., Any])
_APPLIES = "__dynamo_es_applies__"


def applies(*event_classes: type[Any]) -> Callable[[F], F]:
    """Mark an aggregate method as the handler that applies the given event classes to state.

    ::

        @applies(Deposited)
        def _deposited(self, event: Deposited) -> None:
            self.balance += event.amount

    Handlers only change state: no checks, no I/O. Rules belong in the command methods.
    """
    if not event_classes:
        raise EventTypeError("@applies needs at least one event class")
    for cls in event_classes:
        event_type_of(cls)  # a registered event class, or EventTypeError now

    def mark(method: F) -> F:
        setattr(method, _APPLIES, (*getattr(method, _APPLIES, ()), *event_classes))
        return method

    return mark


class _SetBySuperInit:
    """Stands for an attribute ``AggregateRoot.__init__`` sets: read before that, it names the fix.

    A non-data descriptor: the instance's own attribute, once set, is found first (no cost).
    """

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        cls = type(instance).__qualname__
        raise AggregateClassError(
            cls,
            f"the aggregate has no {self.name}: {cls}.__init__ must call super().__init__(aggregate_id) "
            "before it sets its own state",
        )


def _set_by_init() -> Any:
    return _SetBySuperInit()


class AggregateRoot:
    """Base class of event-sourced aggregates.

    Subclasses keep their state in plain attributes, set initial state in ``__init__(self,
    aggregate_id)`` (after calling ``super().__init__``), change it only in ``@applies``
    handlers, and offer command methods that validate and then `record()` events.

    The aggregate type (the ``aggregateType`` attribute and the stream prefix) is the class
    name unless the class says otherwise: ``class Account(AggregateRoot, aggregate_type="acct")``.
    """

    aggregate_type: ClassVar[str] = "AggregateRoot"
    snapshot_version: ClassVar[int] = 1
    """The schema version of this class's snapshot state; bump it when the state's shape changes."""
    _handlers: ClassVar[dict[type[Any], str]] = {}
    _id: str = _set_by_init()
    _version: int = _set_by_init()
    _uncommitted: list[NewEvent] = _set_by_init()

    def __init_subclass__(cls, *, aggregate_type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if aggregate_type is not None:
            cls.aggregate_type = aggregate_type
        elif "aggregate_type" not in cls.__dict__:
            cls.aggregate_type = cls.__name__
        if not cls.aggregate_type or ":" in cls.aggregate_type:
            raise InvalidStreamError(f"aggregate type {cls.aggregate_type!r} must be non-empty and contain no ':'")
        cls._handlers = _collect_handlers(cls)

    def __init__(self, aggregate_id: str) -> None:
        make_stream_id(self.aggregate_type, aggregate_id)  # InvalidStreamError for a bad id
        self._id = aggregate_id
        self._version = 0
        self._uncommitted = []
        self._subjects: set[str] = set()

    @property
    def id(self) -> str:
        """The aggregate's id (the part of the stream id after the type)."""
        return self._id

    @property
    def version(self) -> int:
        """The version of the last event applied, committed or not."""
        return self._version

    @property
    def personal_subjects(self) -> frozenset[str]:
        """The data subjects whose personal data the applied events carried.

        A snapshot of this aggregate is sealed with each one's key (with a shredder), so it can
        be read only while none of them is forgotten.
        """
        return frozenset(self._subjects)

    def add_personal_subjects(self, subjects: Iterable[str]) -> None:
        """Add to `personal_subjects` (what a sealed snapshot restored names). Called by the repository."""
        self._subjects.update(subjects)

    @property
    def committed_version(self) -> int:
        """The version of the last stored event applied: the expected version for a save."""
        return self._version - len(self._uncommitted)

    @property
    def uncommitted_events(self) -> tuple[NewEvent, ...]:
        """Events recorded since the last load or save, oldest first."""
        return tuple(self._uncommitted)

    def record(self, event: Any, *, metadata: EventMetadata | None = None) -> None:
        """Apply ``event`` to the state and queue it for the next save.

        Raises:
            EventTypeError: ``event`` is not a registered event class.
            MissingHandlerError: this aggregate has no ``@applies`` handler for it.
        """
        event_type_of(event)
        self._apply(event)
        self._uncommitted.append(NewEvent(event, metadata=metadata or EventMetadata()))
        self._version += 1

    def mark_committed(self) -> None:
        """Forget the uncommitted events: they are stored. Called by the repository."""
        self._uncommitted.clear()

    def replay(self, events: Iterable[StoredEvent] | EventHistory) -> None:
        """Apply stored events (or a load's `EventHistory`) in order, without queuing them (rehydration)."""
        if self._uncommitted:
            raise InvalidStreamError(f"{self!r} has uncommitted events; cannot replay onto it")
        if isinstance(events, EventHistory):
            self._apply_all(events.events)
            if events.events:
                self._version = events.version
            return
        for stored in events:
            self._apply(stored.event)
            self._version = stored.version

    def snapshot_state(self, converter: cattrs.Converter) -> dict[str, Any]:
        """The state to snapshot: every public instance attribute, unstructured by ``converter``.

        Each must be annotated on the class (``balance: Decimal``) so that it can be restored
        with its type. Override this and `restore_snapshot()` to control the format.

        Raises:
            SnapshotError: a public attribute has no annotation.
        """
        hints = _state_hints(type(self))
        state = {name: value for name, value in vars(self).items() if not name.startswith("_")}
        missing = sorted(set(state) - set(hints))
        if missing:
            raise SnapshotError(
                f"{type(self).__qualname__} cannot be snapshotted: annotate {missing} on the class "
                "(e.g. `balance: Decimal`) so the state can be restored with its types"
            )
        return {name: converter.unstructure(value, hints[name]) for name, value in state.items()}

    def restore_snapshot(self, state: dict[str, Any], version: int, converter: cattrs.Converter) -> None:
        """Set this fresh aggregate's state from a snapshot taken at ``version``."""
        if self._uncommitted or self._version:
            raise SnapshotError(f"{self!r} is not fresh; cannot restore a snapshot onto it")
        hints = _state_hints(type(self))
        for name, value in state.items():
            if name not in hints:
                raise SnapshotError(f"snapshot holds {name!r}, which {type(self).__qualname__} does not declare")
            setattr(self, name, converter.structure(value, hints[name]))
        self._version = version

    def _apply_all(self, events: Iterable[Any]) -> None:
        """`_apply()` each event; each event class's handler is looked up once."""
        bound: dict[type[Any], Callable[[Any], Any]] = {}
        for event in events:
            handler = bound.get(type(event))
            if handler is None:
                self._apply(event)
                handler = bound[type(event)] = self._handler_of(type(event))
            else:
                handler(event)

    def _handler_of(self, cls: type[Any]) -> Callable[[Any], Any]:
        """The bound handler of ``cls``; for an event class with personal data, one that notes its subject."""
        handler: Callable[[Any], Any] = getattr(self, self._handlers[cls])
        field = subject_field_of(cls)
        if field is None:
            return handler
        subjects = self._subjects

        def noting(event: Any) -> None:
            subjects.add(getattr(event, field))
            handler(event)

        return noting

    def _apply(self, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            raise MissingHandlerError(self.aggregate_type, type(event).__qualname__)
        getattr(self, handler)(event)
        field = subject_field_of(type(event))
        if field is not None:
            self._subjects.add(getattr(event, field))

    def __repr__(self) -> str:
        pending = f", {len(self._uncommitted)} uncommitted" if self._uncommitted else ""
        return f"<{type(self).__qualname__} {self._id!r} v{self._version}{pending}>"


def _state_hints(cls: type[AggregateRoot]) -> dict[str, Any]:
    """The annotated, public, per-instance attributes of an aggregate class."""
    hints = typing.get_type_hints(cls)
    return {
        name: hint
        for name, hint in hints.items()
        if not name.startswith("_") and typing.get_origin(hint) is not ClassVar and hint is not ClassVar
    }


def _collect_handlers(cls: type[AggregateRoot]) -> dict[type[Any], str]:
    """Event class -> handler method name, from ``cls`` and its bases (nearest wins)."""
    handlers: dict[type[Any], str] = {}
    for klass in reversed(cls.__mro__):
        own: dict[type[Any], str] = {}
        for name, member in vars(klass).items():
            for event_class in getattr(member, _APPLIES, ()):
                if event_class in own:
                    raise EventTypeError(
                        f"{klass.__qualname__} has two handlers for {event_class.__qualname__}: "
                        f"{own[event_class]} and {name}"
                    )
                own[event_class] = name
        handlers.update(own)
    return handlers
