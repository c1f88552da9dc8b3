"""The sync backend: a thread-safe stop flag, closing an iterator, a value as it is."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ...exceptions import ConfigurationError

__all__ = ["Stop", "awaited", "call", "close_now"]

T = TypeVar("T")


@attrs.define
class Stop:
    """Set by ``stop()`` from any thread; `wait()` sleeps until a timeout or until the flag is set."""

    _event: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._event.is_set()

    def set(self) -> None:
        """Set the flag and end any wait in progress."""
        self._event.set()

    def clear(self) -> None:
        """Reset the flag (a runner may run again)."""
        self._event.clear()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the flag is set meanwhile (not at all if it is set)."""
        self._event.wait(seconds)


def close_now(iterator: object) -> None:
    """Close a generator now (its ``finally`` runs, e.g. a scan's readers stop), not when it is collected."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def awaited(value: T) -> T:
    """``value`` itself: a sync runner's callbacks return plain values.

    Raises:
        ConfigurationError: ``value`` is awaitable (an ``async def`` callback), which a sync runner
            would drop unawaited.
    """
    if inspect.isawaitable(value):
        close = getattr(value, "close", None)
        if close is not None:
            close()  # no "never awaited" warning: the error says it all
        raise ConfigurationError(
            "command",
            "an async function was given to a sync runner; use the async one (dynamo_es.aio) or a plain function",
        )
    return value


def call(function: Callable[..., Any], /, *args: Any) -> None:
    """Call a port for its effect (one that returns an awaitable is refused, as by `awaited`)."""
    awaited(function(*args))
