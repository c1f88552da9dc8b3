"""The asyncio backend: a stop flag whose waits end at once, closing an async iterator, awaiting."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["AsyncStop", "aclose_now", "awaited", "call"]


@attrs.define
class AsyncStop:
    """Set by ``stop()``; `wait()` sleeps until a timeout or until the flag is set. Use it on one event loop."""

    _set: bool = attrs.field(default=False, init=False)
    _wake: asyncio.Event | None = attrs.field(default=None, init=False, repr=False)

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._set

    def set(self) -> None:
        """Set the flag and end any wait in progress."""
        self._set = True
        if self._wake is not None:
            self._wake.set()

    def clear(self) -> None:
        """Reset the flag (a runner may run again)."""
        self._set = False

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the flag is set meanwhile (not at all if it is set)."""
        if self._set:
            return
        self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            self._wake = None


async def aclose_now(iterator: object) -> None:
    """Close an async generator now (its ``finally`` runs, e.g. a scan's readers stop), not when it is collected."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def awaited(value: Any) -> Any:
    """``value`` awaited when it is awaitable (an async callback), as it is otherwise."""
    return await value if inspect.isawaitable(value) else value


async def call(function: Callable[..., Any], /, *args: Any) -> None:
    """Call a port that may be sync or async, for its effect (awaited when it returns an awaitable)."""
    await awaited(function(*args))
