"""The subscription: the events table's DynamoDB stream, read shard by shard, parents first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs

from ...core.backends.asyncio import AsyncStop
from ...core.changes import Change
from ..flows.base import drive_async
from ..flows.stream_reader import StreamReader
from ..wire.aio_client import AsyncStreamClientOwner, LazyAsyncClient

__all__ = ["AsyncSubscription"]


@attrs.define
class AsyncSubscription(StreamReader[LazyAsyncClient], AsyncStreamClientOwner):
    """Changes of the events table, from its DynamoDB stream, in order per aggregate.

    ``async for change in subscription`` (or ``async for batch in subscription.batches()``);
    `stop()` ends either after the change in hand and cuts an idle wait short. Every shard is
    found and re-listed as the stream reshards; a parent shard is read to its end before its
    children, so the changes of one aggregate arrive in version order. An expired shard
    iterator is renewed from the last sequence number. Empty reads wait ``poll_interval``
    seconds; throttling backs off exponentially up to 30 s.

    Made by the store's ``subscribe_to_changes()``; a context manager (or call `close()`), like
    the stores. ``client`` is a lazy client of the ``dynamodbstreams`` service.
    """

    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)

    async def start(self) -> AsyncSubscription:
        """List the shards and place an iterator at the start of each readable one."""
        await drive_async(self._start_flow(), await self.client.get())
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
        return await drive_async(self._poll_flow(), await self.client.get())

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
