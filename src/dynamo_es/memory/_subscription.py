"""A subscription to an InMemoryEventStore's own appends: the same API as a DynamoDB stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime

import attrs

from ..core.changes import Change, ChangeKind, StreamPosition
from ..core.reading import ChangeDecoder
from ..core.serialization import EncodedEvent
from ..ports.source import StartAt

__all__ = ["MEMORY_SHARD", "ChangeLog", "MemorySubscription"]

MEMORY_SHARD = "memory"
"""The one shard of an in-memory store's change log."""


@attrs.frozen
class _Entry:
    kind: ChangeKind
    new: EncodedEvent
    old: EncodedEvent | None


@attrs.define
class ChangeLog:
    """Every change to an in-memory store, in order, with a condition that wakes readers."""

    condition: threading.Condition
    entries: list[_Entry] = attrs.field(factory=list)

    def record(self, kind: ChangeKind, new: EncodedEvent, old: EncodedEvent | None = None) -> None:
        """Add a change; the caller holds the condition's lock."""
        self.entries.append(_Entry(kind, new, old))
        self.condition.notify_all()


@attrs.define
class MemorySubscription:
    """Changes of an in-memory store, in append order; made by ``subscribe_to_changes()``.

    Sequence numbers count from 1 in the single shard ``"memory"``; a position from an earlier
    subscription resumes after it. Iterate it, or ask for `batches()`.
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
    _stopped: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)

    def start(self) -> MemorySubscription:
        """Fix where reading begins: after the position, or at the oldest change, or now."""
        if self._next is None:
            sequence = self.position.shards.get(MEMORY_SHARD)
            with self.log.condition:
                latest = len(self.log.entries)
            self._next = int(sequence) if sequence is not None else (latest if self.start_at == "latest" else 0)
        return self

    def stop(self) -> None:
        """End iteration after the batch in hand; safe from another thread."""
        self._stopped.set()
        with self.log.condition:
            self.log.condition.notify_all()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped.is_set()

    def poll(self) -> list[Change]:
        """The changes not yet delivered (up to ``batch_limit``); the position moves past them."""
        start = self._start_index()
        with self.log.condition:
            entries = self.log.entries[start : start + self.batch_limit]
        changes = [self._change(start + offset + 1, entry) for offset, entry in enumerate(entries)]
        self._next = start + len(entries)
        self.position = self.position.after_all(changes)
        return changes

    def batches(self, *, stop_when_idle: bool = False) -> Iterator[list[Change]]:
        """The changes, one list per read; with ``stop_when_idle``, end once caught up."""
        while not self.stopped:
            batch = self.poll()
            if batch:
                yield batch
            elif stop_when_idle:
                return
            else:
                self._wait()

    def __iter__(self) -> Iterator[Change]:
        for batch in self.batches():
            yield from batch

    def _start_index(self) -> int:
        self.start()
        assert self._next is not None
        return self._next

    def _wait(self) -> None:
        with self.log.condition:
            if len(self.log.entries) <= self._start_index() and not self.stopped:
                self.log.condition.wait(self.poll_interval)

    def _change(self, sequence: int, entry: _Entry) -> Change:
        return self.decoder.change(
            entry.kind,
            entry.new,
            entry.old,
            shard_id=MEMORY_SHARD,
            sequence_number=str(sequence),
            created=datetime.fromisoformat(entry.new.timestamp),
        )
