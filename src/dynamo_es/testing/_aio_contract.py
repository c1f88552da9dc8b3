"""The event store contract for async stores: the same cases, run through a blocking facade.

[`AsyncEventStoreContract`][dynamo_es.testing.AsyncEventStoreContract] is
[`EventStoreContract`][dynamo_es.testing.EventStoreContract] with each store call awaited on an
event loop of its own (in a thread): one suite, so the async stores cannot drift from the sync
ones. Racing cases call from several threads, which become concurrent tasks on that loop.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar, cast

import botocore.client

from ..core.serialization import EventSerializer
from ..ports.store import AsyncEventStore, EventStore
from ._contract import EventStoreContract

__all__ = [
    "AsyncEventStoreContract",
    "Blocking",
    "BlockingCallError",
    "LoopThread",
]

T = TypeVar("T")


class BlockingCallError(AssertionError):
    """A blocking call (socket I/O on a blocking socket, ``time.sleep``, a sync botocore client) ran on the loop."""


_SOCKET_CALLS = ("connect", "connect_ex", "send", "sendall", "recv", "recv_into")
_watched: dict[int, list[str]] = {}
"""Loop threads watched for blocking calls, and what each saw."""
_originals: dict[tuple[Any, str], Any] = {}


def _note(what: str) -> None:
    seen = _watched.get(threading.get_ident())
    if seen is not None:
        where = "".join(traceback.format_stack(limit=6)[:-2])
        seen.append(f"{what}, called from\n{where}")


def _watching(owner: Any, name: str, blocks: Callable[..., bool]) -> None:
    original = getattr(owner, name)
    _originals[(owner, name)] = original

    def watched(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() in _watched and blocks(*args):
            _note(f"{getattr(owner, '__name__', owner)}.{name}")
        return original(*args, **kwargs)

    setattr(owner, name, watched)


def _install_watch() -> None:
    """Wrap the blocking calls (once): each notes itself when it runs on a watched loop thread."""
    if _originals:
        return
    _watching(time, "sleep", lambda *_: True)
    for name in _SOCKET_CALLS:  # asyncio's own sockets are non-blocking (timeout 0.0): allowed
        _watching(socket.socket, name, lambda sock, *_: sock.gettimeout() != 0.0)
    _watching(botocore.client.BaseClient, "_make_api_call", lambda *_: True)  # aiobotocore overrides it


def _remove_watch() -> None:
    for (owner, name), original in _originals.items():
        setattr(owner, name, original)
    _originals.clear()


class LoopThread:
    """An event loop running in a daemon thread; ``run(coroutine)`` waits for its result.

    With ``watch_blocking``, every blocking call made on the loop's thread (socket I/O on a
    blocking socket, ``time.sleep``, a call of a sync botocore client) is noted, and `stop()`
    raises `BlockingCallError` naming each: the loop must only ever wait by awaiting.
    """

    def __init__(self, *, watch_blocking: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="dynamo-es-contract-loop", daemon=True)
        self._watch = watch_blocking
        self._ready = threading.Event()
        if watch_blocking:
            _install_watch()
        self._thread.start()
        self._ready.wait()

    def _serve(self) -> None:
        if self._watch:
            _watched[threading.get_ident()] = []
        self._ready.set()
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return (or raise) what it does."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        """Stop the loop and its thread.

        Raises:
            BlockingCallError: with ``watch_blocking``, a blocking call ran on the loop.
        """
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
        seen = _watched.pop(self._thread.ident or 0, [])
        if self._watch and not _watched:
            _remove_watch()
        if seen:
            raise BlockingCallError(f"{len(seen)} blocking call(s) on the event loop:\n" + "\n".join(seen))


class Blocking:
    """Any async object as a blocking one, run on ``runner``'s loop.

    Coroutine methods are awaited there; async generator methods, and ``async for`` over the
    target, become plain iterators (each item awaited there); other methods are called on the
    loop's thread too (so a ``stop()`` from another thread is safe); other attributes are read
    as they are.
    ``target`` is the async object, ``runner`` the loop thread.
    """

    def __init__(self, target: Any, runner: LoopThread) -> None:
        self.target = target
        self.runner = runner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.target, name)
        if inspect.iscoroutinefunction(attribute):
            return lambda *args, **kwargs: self._same(self.runner.run(attribute(*args, **kwargs)))
        if inspect.isasyncgenfunction(attribute):
            return lambda *args, **kwargs: self._iterate(attribute(*args, **kwargs))
        if inspect.ismethod(attribute):
            return lambda *args, **kwargs: self.runner.run(_called(attribute, *args, **kwargs))
        return attribute

    def __iter__(self) -> Iterator[Any]:
        """``async for`` over the target, as a plain iterator."""
        return self._iterate(aiter(self.target))

    def _same(self, result: Any) -> Any:
        return self if result is self.target else result  # a fluent ``start()`` returns the facade

    def _iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        while True:
            try:
                yield self.runner.run(_next(iterator))
            except StopAsyncIteration:
                return


async def _called(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return function(*args, **kwargs)


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)


class AsyncEventStoreContract(EventStoreContract):
    """The event store contract for an [`AsyncEventStore`][dynamo_es.aio.AsyncEventStore].

    Subclass it as ``TestYourAsyncStore`` and implement ``create_async_store(serializer)``;
    stores with a ``close()`` coroutine are closed after each test. A test fails when any
    blocking call (socket I/O on a blocking socket, ``time.sleep``, a sync botocore client) ran
    on the event loop's thread (`BlockingCallError`).
    """

    _runner: LoopThread | None = None
    _stores: list[AsyncEventStore] | None = None

    def create_async_store(self, serializer: EventSerializer) -> AsyncEventStore:
        """Return an async store that uses ``serializer``."""
        raise NotImplementedError

    def create_store(self, serializer: EventSerializer) -> EventStore:
        """The async store behind a blocking facade (one loop per test)."""
        if self._runner is None:
            self._runner, self._stores = LoopThread(watch_blocking=True), []
        store = self.create_async_store(serializer)
        assert self._stores is not None
        self._stores.append(store)
        # every method of the async protocol is a coroutine of the same name and arguments, so the
        # facade needs none of its own: an operation added to the protocols is covered as it is
        return cast(EventStore, Blocking(store, self._runner))

    def teardown_method(self, method: Any) -> None:
        """Close the test's stores and stop its loop."""
        runner, stores = self._runner, self._stores or []
        self._runner, self._stores = None, None
        if runner is None:
            return
        for store in stores:
            close = getattr(store, "close", None)
            if close is not None:
                runner.run(close())
        runner.stop()
