"""An in-memory store's change log: every append and outbox mark, in order, for its subscriptions."""

from __future__ import annotations

import threading

import attrs

from ..core.changes import ChangeKind
from ..core.serialization import EncodedEvent

__all__ = ["MEMORY_SHARD", "ChangeLog", "LogEntry"]

MEMORY_SHARD = "memory"
"""The one shard of an in-memory store's change log."""


@attrs.frozen
class LogEntry:
    kind: ChangeKind
    new: EncodedEvent
    old: EncodedEvent | None


@attrs.define
class ChangeLog:
    """Every change to an in-memory store, in order, with a condition that wakes readers."""

    condition: threading.Condition
    entries: list[LogEntry] = attrs.field(factory=list)

    def record(self, kind: ChangeKind, new: EncodedEvent, old: EncodedEvent | None = None) -> None:
        """Add a change; the caller holds the condition's lock."""
        self.entries.append(LogEntry(kind, new, old))
        self.condition.notify_all()

    def wake(self) -> None:
        """Wake every reader waiting for a change (a subscription was stopped)."""
        with self.condition:
            self.condition.notify_all()
