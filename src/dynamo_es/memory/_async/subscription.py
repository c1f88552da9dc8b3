"""A subscription to an in-memory store's own appends: the same API as a DynamoDB stream's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import attrs

from ...core.backends.asyncio import AsyncStop, wait_until, yield_now
from ...core.changes import Change, StreamPosition
from ...core.reading import ChangeDecoder
from ...ports.source import StartAt
from .._log import MEMORY_SHARD, ChangeLog, LogEntry

__all__ = ["AsyncMemorySubscription"]


@attrs.define
class AsyncMemorySubscription:
    """Changes of an in-memory store, in append order; made by ``subscribe_to_changes()``.

    Sequence numbers count from 1 in the single shard ``"memory"``; a position from an earlier
    subscription resumes after it. Iterate it, or ask for `batches()`. An idle read waits up to
    ``poll_interval`` seconds for the next change; `stop()` cuts the wait short.
    """

    log: ChangeLog
    decoder: ChangeDecoder
    position: StreamPosition = attrs.field(factory=StreamPosition)
    start_at: StartAt = attrs.field(default="trim_horizon", kw_only=True)
    poll_interval: float = attrs.field(default=0.05, kw_only=True)
    batch_limit: int = attrs.field(default=1000, kw_only=True)
    records_lost: int = attrs.field(default=0, init=False)
    """Always 0: an in-memory log is never trimmed."""
    _next: int | None = attrs.field(default=None, init=False, repr=False)
    _stopped: AsyncStop = attrs.field(factory=AsyncStop, init=False, repr=False)

    async def start(self) -> AsyncMemorySubscription:
        """Fix where reading begins: after the position, or at the oldest change, or now."""
        self._begin()
        return self

    def stop(self) -> None:
        """End iteration after the batch in hand, and an idle wait at once."""
        self._stopped.set()
        self.log.wake()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped.is_set()

    async def poll(self) -> list[Change]:
        """The changes not yet delivered (up to ``batch_limit``); the position moves past them."""
        await yield_now()
        start = self._begin()
        with self.log.condition:
            entries = self.log.entries[start : start + self.batch_limit]
        changes = [self._change(start + offset + 1, entry) for offset, entry in enumerate(entries)]
        self._next = start + len(entries)
        self.position = self.position.after_all(changes)
        return changes

    async def batches(self, *, stop_when_idle: bool = False) -> AsyncIterator[list[Change]]:
        """The changes, one list per read; with ``stop_when_idle``, end once caught up."""
        while not self.stopped:
            batch = await self.poll()
            if batch:
                yield batch
            elif stop_when_idle:
                return
            else:
                await wait_until(self.log.condition, self._caught_up, self._stopped, self.poll_interval)

    async def __aiter__(self) -> AsyncIterator[Change]:
        async for batch in self.batches():
            for change in batch:
                yield change

    def _begin(self) -> int:
        if self._next is None:
            sequence = self.position.shards.get(MEMORY_SHARD)
            with self.log.condition:
                latest = len(self.log.entries)
            self._next = int(sequence) if sequence is not None else (latest if self.start_at == "latest" else 0)
        return self._next

    def _caught_up(self) -> bool:
        return len(self.log.entries) <= self._begin()

    def _change(self, sequence: int, entry: LogEntry) -> Change:
        return self.decoder.change(
            entry.kind,
            entry.new,
            entry.old,
            shard_id=MEMORY_SHARD,
            sequence_number=str(sequence),
            created=datetime.fromisoformat(entry.new.timestamp),
        )
