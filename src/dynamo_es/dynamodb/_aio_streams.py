"""AsyncSubscription: the events table's DynamoDB stream, read on aiobotocore by the sync subscription's rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

import attrs

from ..core.backends.asyncio import AsyncStop
from ..core.changes import Change
from .flows.base import drive_async
from .flows.stream_reader import StreamReader
from .wire.aio_client import LazyAsyncClient

__all__ = ["AsyncSubscription"]


@attrs.define
class AsyncSubscription(StreamReader):
    """[`Subscription`][dynamo_es.dynamodb.Subscription] for asyncio: the same shards, order, backoff and position.

    ``async for change in subscription`` (or ``async for batch in subscription.batches()``);
    `stop()` from the event loop ends either after the change in hand and cuts an idle wait
    short. Every request is awaited on aiobotocore; long batches are decoded in slices, with
    the loop free in between. Made by
    [`AsyncDynamoDBEventStore.subscribe_to_changes`][dynamo_es.dynamodb.aio.AsyncDynamoDBEventStore.subscribe_to_changes];
    an async context manager (or call `close()`), like the stores.

    ``client`` is a `LazyAsyncClient` of the ``dynamodbstreams`` service.
    """

    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)

    async def __aenter__(self) -> AsyncSubscription:
        try:
            return await self.start()
        except BaseException:
            await self.close()  # no __aexit__ follows a failed __aenter__
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the streams client."""
        await self._lazy_client().close()

    def _lazy_client(self) -> LazyAsyncClient:
        client: LazyAsyncClient = self.client
        return client

    async def start(self) -> AsyncSubscription:
        """List the shards and place an iterator at the start of each readable one."""
        await drive_async(self._start_flow(), await self._lazy_client().get())
        return self

    def stop(self) -> None:
        """End iteration after the change being delivered, and any idle wait at once."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped.is_set()

    async def poll(self) -> list[Change]:
        """Read each readable shard once and return the decoded changes (position not moved)."""
        return await drive_async(self._poll_flow(), await self._lazy_client().get())

    async def __aiter__(self) -> AsyncIterator[Change]:
        async for batch in self._batches(stop_when_idle=False):
            for change in batch:
                self.position = self.position.after(change)
                yield change
                if self.stopped:
                    return

    async def batches(self, *, stop_when_idle: bool = False) -> AsyncIterator[list[Change]]:
        """The changes, one list per read; with ``stop_when_idle``, end once caught up."""
        async for batch in self._batches(stop_when_idle=stop_when_idle):
            self.position = self.position.after_all(batch)
            yield batch

    async def _batches(self, *, stop_when_idle: bool) -> AsyncIterator[list[Change]]:
        await self.start()
        while not self.stopped:
            batch = await self.poll()
            if batch:
                yield batch
                continue
            if stop_when_idle and self._idle:
                return
            await self._stopped.wait(self._delay())
