"""The read-side twin of ``@applies``: handler methods of a read model or policy class, one per event class."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs

from ..core.changes import Change
from ..core.reading import Selection, to_selection
from ..domain.events import EventMetadata, StoredEvent, event_type_of
from ..exceptions import ConfigurationError, EventTypeError

__all__ = ["Dispatch", "caused_by", "handler_of", "handles", "policy_of"]

F = TypeVar("F", bound=Callable[..., Any])
_HANDLES = "__dynamo_es_handles__"


def handles(*event_classes: type[Any]) -> Callable[[F], F]:
    """Mark a method of a read model (or process-manager policy) class as the handler of these event classes.

    ::

        class Balances:
            @handles(Deposited, Withdrawn)
            def changed(self, change: Change) -> None:
                ...

    An instance of such a class is a projection's handler (a policy's, for a process manager):
    each change goes to the method for its event class, with the arguments a plain handler
    gets, and the projection reads exactly those event classes. Records of any other type are
    skipped without being decoded.
    """
    if not event_classes:
        raise EventTypeError("@handles needs at least one event class")
    for cls in event_classes:
        event_type_of(cls)  # a registered event class, or EventTypeError now

    def mark(method: F) -> F:
        setattr(method, _HANDLES, (*getattr(method, _HANDLES, ()), *event_classes))
        return method

    return mark


def _collect(cls: type[Any]) -> dict[type[Any], str]:
    """Event class -> method name, from ``cls`` and its bases (nearest wins)."""
    methods: dict[type[Any], str] = {}
    for klass in reversed(cls.__mro__):
        own: dict[type[Any], str] = {}
        for name, member in vars(klass).items():
            for event_class in getattr(member, _HANDLES, ()):
                if event_class in own:
                    raise EventTypeError(
                        f"{klass.__qualname__} has two handlers for {event_class.__qualname__}: "
                        f"{own[event_class]} and {name}"
                    )
                own[event_class] = name
        methods.update(own)
    return methods


@attrs.frozen
class Dispatch:
    """Calls ``target``'s ``@handles`` method for each change's event class; what a projection runs.

    Attributes:
        target: the read model or policy object.
        methods: event class -> method name.
    """

    target: Any
    methods: dict[type[Any], str]

    @property
    def selection(self) -> Selection:
        """The event types the methods handle: what the projection reads."""
        return Selection(list(self.methods))

    def __call__(self, change: Change, /, *args: Any) -> Any:
        method = self.methods.get(type(change.event.event))
        if method is None:
            return None  # not an event class it handles (only unread records could be that, and they do not come)
        return getattr(self.target, method)(change, *args)


def handler_of(handler: Any, reads: Selection | None, *, owner: str) -> tuple[Callable[..., Any], Selection]:
    """The callable a projection runs and the selection it reads, for a plain callable or a ``@handles`` object.

    Raises:
        ConfigurationError: a ``@handles`` object given a selection too (it declares its own),
            or an object with neither ``@handles`` methods nor a call.
    """
    methods = _collect(type(handler))
    if not methods:
        if not callable(handler):
            raise ConfigurationError(
                "handler", f"{owner}: {handler!r} is neither callable nor a class with @handles methods"
            )
        return handler, reads if reads is not None else Selection()
    if reads is not None:
        raise ConfigurationError(
            "reads", f"{owner}: {type(handler).__qualname__} declares what it reads with @handles; drop reads="
        )
    dispatch = Dispatch(handler, methods)
    return dispatch, dispatch.selection


def caused_by(event: StoredEvent) -> EventMetadata:
    """Metadata of what a process manager saves in reaction to ``event``: its cause, and its correlation id."""
    return EventMetadata(correlation_id=event.metadata.correlation_id or event.event_id, causation_id=event.event_id)


def policy_of(
    name: str, policy: Any, reads: Selection | Iterable[type[Any] | str] | None
) -> tuple[Callable[..., Any], Selection]:
    """The callable a process manager runs per change and what it reads (from ``reads`` or ``@handles``)."""
    return handler_of(policy, None if reads is None else to_selection(reads), owner=f"process manager {name!r}")
