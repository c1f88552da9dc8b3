"""A stop flag for async runners whose waits end at once when it is set."""

from __future__ import annotations

import asyncio

import attrs

__all__ = ["AsyncStop"]


@attrs.define
class AsyncStop:
    """Set by ``stop()``; `wait()` sleeps until a timeout or until the flag is set. Use it on one event loop."""

    is_set: bool = False
    _wake: asyncio.Event | None = attrs.field(default=None, init=False, repr=False)

    def set(self) -> None:
        """Set the flag and end any wait in progress."""
        self.is_set = True
        if self._wake is not None:
            self._wake.set()

    def clear(self) -> None:
        """Reset the flag (a runner may run again)."""
        self.is_set = False

    async def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the flag is set meanwhile (not at all if it is set)."""
        if self.is_set:
            return
        self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            self._wake = None
