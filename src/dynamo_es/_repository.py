"""Repository: load aggregates by replaying their stream, save what they recorded."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

from ._aggregate import AggregateRoot
from ._events import EventMetadata
from ._store import EventStore, check_version
from .exceptions import AggregateNotFoundError

__all__ = ["Repository"]

A = TypeVar("A", bound=AggregateRoot)


@attrs.define
class Repository(Generic[A]):
    """Loads and saves aggregates of one class through any :class:`EventStore`.

    ``Repository(BankAccount, store).get("acc-1")`` is typed as ``BankAccount``.

    Args:
        aggregate_class: the aggregate class; it must accept ``cls(aggregate_id)``.
        store: where the events live.
    """

    aggregate_class: type[A]
    store: EventStore

    def get(self, aggregate_id: str, *, version: int | None = None) -> A:
        """The aggregate rebuilt from its events; with ``version``, as it was at that version.

        With ``version`` past the end of the stream, the aggregate is at its latest version
        (check ``aggregate.version``).

        Raises:
            AggregateNotFoundError: the stream has no event (up to ``version``).
        """
        if version is not None:
            check_version("version", version, minimum=1)
        aggregate_type = self.aggregate_class.aggregate_type
        events = self.store.load(aggregate_id, aggregate_type, to_version=version)
        if not events:
            raise AggregateNotFoundError(aggregate_type, aggregate_id)
        aggregate = self.aggregate_class(aggregate_id)
        aggregate.replay(events)
        return aggregate

    def save(self, aggregate: A, *, metadata: EventMetadata | None = None) -> int:
        """Append the aggregate's uncommitted events; return its new version.

        The expected version is the one it was loaded (or last saved) at. Events go in the
        store's transactions of up to 100; with nothing uncommitted this is a no-op.
        ``metadata`` (correlation id, say) is laid over every event's own.

        Raises:
            ConcurrencyError: another writer appended first; reload and retry the command.
            EventStoreError: the store failed (the aggregate keeps its uncommitted events).
        """
        if not aggregate.uncommitted_events:
            return aggregate.version
        result = self.store.append(
            aggregate.id,
            aggregate.aggregate_type,
            aggregate.uncommitted_events,
            aggregate.committed_version,
            metadata=metadata,
        )
        result.raise_for_failure()
        aggregate.mark_committed()
        return result.new_version

    def exists(self, aggregate_id: str) -> bool:
        """Whether the aggregate's stream holds any event."""
        return self.store.stream_version(aggregate_id, self.aggregate_class.aggregate_type) > 0
