"""Runner logic written once for sync and async ports: generators that yield the calls they need.

A projection's batch, or an outbox dispatcher's decision about one event, is a generator
that yields `Use(port.method, *args)` wherever it needs a store, a checkpoint store, a
handler or a pause, and receives the result (or has the error thrown in). `run_steps()`
calls each port directly; `run_steps_async()` awaits what the port returns when it is
awaitable (an async store, an async handler) and calls plain functions as they are. So the
sync and the async runners share every rule -- ordering, gap filling, parking, claims,
retries -- and differ only in their ports. The DynamoDB stores do the same one level lower
(`dynamodb._flows`), with DynamoDB requests as the steps.

Steps that save their progress when an error passes through do it in ``except BaseException``
after letting ``GeneratorExit`` pass, not in a ``finally``: a generator being closed may not yield.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any, TypeVar

__all__ = ["Steps", "Use", "run_steps", "run_steps_async"]

T = TypeVar("T")


class Use:
    """One call of a port: ``call(*args, **kwargs)``, awaited by the async runner when it returns an awaitable."""

    __slots__ = ("args", "call", "kwargs")

    def __init__(self, call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self.call = call
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"Use({getattr(self.call, '__qualname__', self.call)!r})"


Steps = Generator[Use, Any, T]
"""Runner logic: yields port calls, receives their results, returns its own."""


def run_steps(steps: Steps[T]) -> T:
    """Run ``steps`` with sync ports; a port's error is raised inside ``steps`` where it called."""
    try:
        step = next(steps)
        while True:
            try:
                result = step.call(*step.args, **step.kwargs)
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as error:  # noqa: BLE001 (thrown into the steps, which decide)
                step = steps.throw(error)
            else:
                step = steps.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


async def run_steps_async(steps: Steps[T]) -> T:
    """Run ``steps`` with ports that may be async (awaited) or sync (called as they are)."""
    try:
        step = next(steps)
        while True:
            try:
                result = step.call(*step.args, **step.kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except GeneratorExit:  # this coroutine is being closed: no step may run any more
                steps.close()
                raise
            except BaseException as error:  # noqa: BLE001 (thrown in: cancellation too, so the steps' cleanup runs)
                step = steps.throw(error)
            else:
                step = steps.send(result)
    except StopIteration as done:
        value: T = done.value
        return value
