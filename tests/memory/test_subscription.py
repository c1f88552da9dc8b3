"""The in-memory store's subscription to its own appends: the same API as a DynamoDB stream."""

from __future__ import annotations

import attrs

from dynamo_es import ChangeKind, InMemoryEventStore, StreamPosition, event
from dynamo_es.memory import MemorySubscription
from dynamo_es.projections import ChangeSource, ScannableStore


@event(name="memory-subscription.Noted")
@attrs.frozen
class Noted:
    text: str


def filled(count: int) -> InMemoryEventStore:
    store = InMemoryEventStore()
    store.append("a", "Note", [Noted(str(n)) for n in range(count)], 0).raise_for_failure()
    return store


class TestMemorySubscription:
    def test_delivers_appends_in_order_with_sequence_numbers(self) -> None:
        """Every appended event arrives once, in append order, numbered from 1 in the shard "memory"."""
        store = filled(3)
        changes = store.subscribe_to_changes().poll()
        assert [(c.kind, c.event.version, c.sequence_number, c.shard_id) for c in changes] == [
            (ChangeKind.INSERT, 1, "1", "memory"),
            (ChangeKind.INSERT, 2, "2", "memory"),
            (ChangeKind.INSERT, 3, "3", "memory"),
        ]

    def test_resumes_after_a_position_and_starts_at_latest(self) -> None:
        """A position resumes after it; "latest" sees only what is appended after start()."""
        store = filled(3)
        resumed = store.subscribe_to_changes(StreamPosition({"memory": "2"})).poll()
        assert [c.event.version for c in resumed] == [3]
        latest = store.subscribe_to_changes(start_at="latest").start()
        store.append("a", "Note", [Noted("x")], 3).raise_for_failure()
        assert [c.event.version for c in latest.poll()] == [4]

    def test_outbox_marks_are_modifications(self) -> None:
        """Marking an event dispatched is delivered as a MODIFY with the previous image."""
        store = filled(1)
        store.mark_dispatched("a", "Note", 1)
        _insert, modify = store.subscribe_to_changes().poll()
        assert modify.kind is ChangeKind.MODIFY and modify.event.is_dispatched
        assert modify.previous is not None and not modify.previous.is_dispatched

    def test_batches_stop_when_idle_and_position_moves(self) -> None:
        """batches(stop_when_idle=True) ends once caught up; the position names the last delivered."""
        store = filled(5)
        subscription = store.subscribe_to_changes()
        subscription.batch_limit = 2
        assert [len(b) for b in subscription.batches(stop_when_idle=True)] == [2, 2, 1]
        assert subscription.position == StreamPosition({"memory": "5"})

    def test_the_store_is_a_change_source_and_scannable(self) -> None:
        """The memory store offers what projections need: a subscription and a full read."""
        store = filled(4)
        assert isinstance(store, ChangeSource) and isinstance(store, ScannableStore)
        assert isinstance(store.subscribe_to_changes(), MemorySubscription)
        assert [e.version for page in store.scan(page_size=3) for e in page] == [1, 2, 3, 4]
