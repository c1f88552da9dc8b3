"""One step vocabulary for all I/O-free logic, and its one pair of drivers (sync and async).

Runner logic (a projection's batch, an outbox dispatcher's decision about one event) and store
algorithms (an append, a commit, a load) are generators that yield the steps they need:

- `Use(port.method, *args)`: call a port (a store, a checkpoint store, a handler, a pause);
- `Call(operation, params)`: send one request on the driver's client (``client.query(**params)``);
- `Sleep(seconds)`: wait before a retry; ``Sleep(0)`` lets an event loop run other tasks;
- `Concurrently(steps, ...)`: run several of these generators at once (threads for the sync
  driver, tasks for the async one) and receive their results, in order.

Each receives the result, or has the error thrown in where it was yielded. `run_steps()` drives
them with sync ports and a botocore client; `run_steps_async()` awaits what returns an awaitable
and sleeps without blocking. So the sync and the async code share every rule -- ordering, gap
filling, parking, claims, retries, planning, decoding -- and differ only in how a step runs.

Steps that save their progress when an error passes through do it in ``except BaseException``
after letting ``GeneratorExit`` pass, not in a ``finally``: a generator being closed may not yield.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import attrs

__all__ = ["Call", "Concurrently", "Sleep", "Step", "Steps", "Use", "run_steps", "run_steps_async"]

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


@attrs.frozen
class Call:
    """One request on the driver's client: the method's name (``"query"``) and its parameters."""

    operation: str
    params: dict[str, Any]


@attrs.frozen
class Sleep:
    """A pause before a retry; ``Sleep(0)`` lets an event loop run other tasks during long decoding."""

    seconds: float


class Concurrently:
    """Several step generators run at once; the result is the list of their results, in order.

    The first error (in order) is raised once every one has ended: none is left running.
    """

    __slots__ = ("steps",)

    def __init__(self, steps: Sequence[Steps[Any]]) -> None:
        self.steps = tuple(steps)

    def __repr__(self) -> str:
        return f"Concurrently({len(self.steps)})"


Step = Use | Call | Sleep | Concurrently
Steps = Generator[Step, Any, T]
"""I/O-free logic: yields steps, receives their results, returns its own."""

MAX_CONCURRENCY = 8
"""Threads the sync driver runs `Concurrently` steps on (one shared pool, made on first use)."""
MAX_ASYNC_CONCURRENCY = 3
"""Tasks the async driver runs at once for one `Concurrently` step: responses that arrive together
are parsed one after the other on the loop, so fewer at once keeps its pauses short."""
_POOL: list[concurrent.futures.ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENCY, thread_name_prefix="dynamo-es"))
        return _POOL[0]


def run_steps(steps: Steps[T], client: Any = None) -> T:
    """Run ``steps`` with sync ports (and ``client`` for its `Call` steps); an error is raised where it occurred."""
    try:
        step = next(steps)
        while True:
            try:
                result = _run(step, client)
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


def _run(step: Step, client: Any) -> Any:
    if isinstance(step, Call):
        return getattr(client, step.operation)(**step.params)
    if isinstance(step, Concurrently):
        return _run_concurrently(step.steps, client)
    if isinstance(step, Sleep):
        if step.seconds:  # Sleep(0) is a pause for an event loop; a thread needs none
            time.sleep(step.seconds)
        return None
    return step.call(*step.args, **step.kwargs)


async def run_steps_async(steps: Steps[T], client: Any = None) -> T:
    """Run ``steps`` with ports that may be async (awaited) or sync, and ``client`` an aiobotocore client."""
    try:
        step = next(steps)
        while True:
            try:
                result = await _run_async(step, client)
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


def _run_concurrently(steps: tuple[Steps[Any], ...], client: Any) -> list[Any]:
    """Each generator on a thread of the shared pool (the first in this one); results in order."""
    if not steps:
        return []
    # each thread runs in a copy of this context: a span current here stays current there
    futures = [_pool().submit(contextvars.copy_context().run, run_steps, each, client) for each in steps[1:]]
    try:
        first = run_steps(steps[0], client)
    finally:
        concurrent.futures.wait(futures)
    return [first, *(future.result() for future in futures)]


async def _run_concurrently_async(steps: tuple[Steps[Any], ...], client: Any) -> list[Any]:
    """Each generator as a task; on an error (or a cancellation) the others are cancelled, then it is raised."""
    limit = asyncio.Semaphore(MAX_ASYNC_CONCURRENCY)

    async def run(each: Steps[Any]) -> Any:
        async with limit:
            return await run_steps_async(each, client)

    tasks = [asyncio.ensure_future(run(each)) for each in steps]
    try:
        return [await task for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _run_async(step: Step, client: Any) -> Any:
    if isinstance(step, Call):
        return await getattr(client, step.operation)(**step.params)
    if isinstance(step, Concurrently):
        return await _run_concurrently_async(step.steps, client)
    if isinstance(step, Sleep):
        await asyncio.sleep(step.seconds)
        return None
    result = step.call(*step.args, **step.kwargs)
    return await result if inspect.isawaitable(result) else result
