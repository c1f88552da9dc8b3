"""The event store contract: one test suite that every EventStore must pass.

Subclass [`EventStoreContract`][dynamo_es.testing.EventStoreContract] in a test module, name the subclass
``Test...`` and
implement `create_store()`; pytest then runs every check against
your store::

    class TestMyStore(EventStoreContract):
        def create_store(self, serializer):
            return MyStore(serializer=serializer)
"""

from __future__ import annotations

import threading
import unittest
from datetime import UTC, datetime

from ..core.serialization import EventSerializer
from ..domain.events import EventHistory, EventMetadata, NewEvent
from ..exceptions import EventTooLargeError, InvalidStreamError
from ..ports.store import AppendResult, EventStore, ReplayableStore
from ._contract_commits import MultiStreamContract
from ._contract_events import Noted, contract_registry, notes, stream

__all__ = ["EventStoreContract"]


class EventStoreContract(MultiStreamContract):
    """Behaviour every [`EventStore`][dynamo_es.EventStore] shares. Subclass it as ``TestYourStore``."""

    def create_store(self, serializer: EventSerializer) -> EventStore:
        """Return a store that uses ``serializer``; each call may return the same store."""
        raise NotImplementedError

    def store(self) -> EventStore:
        """The store under test, with the contract's serializer."""
        return self.create_store(EventSerializer(registry=contract_registry))

    def test_appended_events_load_back_in_order_with_their_envelope(self) -> None:
        """Appending to a new stream and loading returns the same events, versions 1..n."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        result = store.append(aggregate_id, aggregate_type, notes(3), 0)
        assert result.success and result.new_version == 3 and not result.conflict
        loaded = store.load(aggregate_id, aggregate_type)
        assert [e.event for e in loaded] == notes(3)
        assert [e.version for e in loaded] == [1, 2, 3]
        assert {e.event_type for e in loaded} == {"ContractNoted"}
        assert {e.stream_id for e in loaded} == {f"{aggregate_type}:{aggregate_id}"}
        assert len({e.event_id for e in loaded}) == 3
        assert all(e.timestamp.tzinfo is not None and not e.is_dispatched for e in loaded)

    def test_envelope_identity_and_metadata_round_trip(self) -> None:
        """Event id, timestamp and metadata given in a NewEvent are stored as given."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        envelope = NewEvent(
            Noted("x"),
            event_id="7b0f3c1e-0000-4000-8000-000000000001",
            timestamp=when,
            metadata=EventMetadata(causation_id="cmd-1", extra={"user": "ada"}),
        )
        store.append(
            aggregate_id,
            aggregate_type,
            [envelope],
            0,
            metadata=EventMetadata(correlation_id="req-9"),
        )
        (stored,) = store.load(aggregate_id, aggregate_type)
        assert stored.event_id == envelope.event_id and stored.timestamp == when
        assert stored.metadata == EventMetadata(correlation_id="req-9", causation_id="cmd-1", extra={"user": "ada"})

    def test_next_append_continues_the_version_sequence(self) -> None:
        """An append with the current version as expected gets the following versions."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        store.append(aggregate_id, aggregate_type, notes(2), 0).raise_for_failure()
        result = store.append(aggregate_id, aggregate_type, notes(2, prefix="more"), 2)
        assert result.new_version == 4
        assert [e.version for e in store.load(aggregate_id, aggregate_type)] == [1, 2, 3, 4]
        assert store.stream_version(aggregate_id, aggregate_type) == 4

    def test_stale_expected_version_is_a_conflict_and_writes_nothing(self) -> None:
        """Expecting an older version reports a conflict with the actual version."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        store.append(aggregate_id, aggregate_type, notes(3), 0).raise_for_failure()
        result = store.append(aggregate_id, aggregate_type, notes(2, prefix="late"), 1)
        assert _is_conflict(result, expected=1, actual=3)
        assert [e.event.text for e in store.load(aggregate_id, aggregate_type)] == [
            "note 1",
            "note 2",
            "note 3",
        ]

    def test_expected_version_past_the_end_is_a_conflict(self) -> None:
        """Expecting a version the stream has not reached is a conflict, never a gap."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        store.append(aggregate_id, aggregate_type, notes(1), 0).raise_for_failure()
        assert _is_conflict(store.append(aggregate_id, aggregate_type, notes(1), 5), expected=5, actual=1)
        assert _is_conflict(self.store().append(*stream(), notes(1), 2), expected=2, actual=0)
        assert store.stream_version(aggregate_id, aggregate_type) == 1

    def test_appending_the_same_envelopes_again_is_idempotent(self) -> None:
        """A retry with the same NewEvents succeeds without duplicating or conflicting."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        envelopes = [NewEvent(note) for note in notes(3)]
        first = store.append(aggregate_id, aggregate_type, envelopes, 0)
        again = store.append(aggregate_id, aggregate_type, envelopes, 0)
        assert first.success and again.success and again.new_version == 3
        assert [e.event_id for e in store.load(aggregate_id, aggregate_type)] == [e.event_id for e in envelopes]

    def test_empty_append_is_a_successful_no_op(self) -> None:
        """Appending no events succeeds and leaves the version as it was."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        result = store.append(aggregate_id, aggregate_type, [], 0)
        assert result.success and result.new_version == 0
        assert store.load(aggregate_id, aggregate_type) == []

    def test_load_honours_version_range(self) -> None:
        """``from_version`` and ``to_version`` bound the loaded events, inclusively."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        store.append(aggregate_id, aggregate_type, notes(10), 0).raise_for_failure()
        assert [e.version for e in store.load(aggregate_id, aggregate_type, from_version=4, to_version=6)] == [4, 5, 6]
        assert [e.version for e in store.load(aggregate_id, aggregate_type, from_version=9)] == [
            9,
            10,
        ]
        assert [e.version for e in store.load(aggregate_id, aggregate_type, to_version=2)] == [1, 2]
        assert store.load(aggregate_id, aggregate_type, from_version=11) == []

    def test_a_history_holds_the_events_a_load_gives(self) -> None:
        """``load_history`` (a store that has it): the events of ``load``, range by range, and the last version."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        if not isinstance(store, ReplayableStore):
            raise unittest.SkipTest("the store has no load_history (repositories use load)")
        store.append(aggregate_id, aggregate_type, notes(10), 0).raise_for_failure()
        for first, last in [(1, None), (4, 6), (9, None), (1, 2), (11, None), (5, 3)]:
            loaded = store.load(aggregate_id, aggregate_type, from_version=first, to_version=last)
            history = store.load_history(aggregate_id, aggregate_type, from_version=first, to_version=last)
            assert history.events == tuple(e.event for e in loaded)
            assert history.version == (loaded[-1].version if loaded else 0)
        assert store.load_history(*stream()) == EventHistory((), 0)
        try:
            store.load_history(aggregate_id, "Bad:Type")
        except InvalidStreamError:
            return
        raise AssertionError("a malformed aggregate type was accepted")

    def test_unknown_stream_is_empty_at_version_zero(self) -> None:
        """A stream never written to loads empty at version 0."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        assert store.load(aggregate_id, aggregate_type) == []
        assert store.stream_version(aggregate_id, aggregate_type) == 0

    def test_streams_are_isolated_by_type_and_id(self) -> None:
        """The same id under two aggregate types is two streams."""
        store, (aggregate_id, _) = self.store(), stream()
        store.append(aggregate_id, "ContractA", notes(1, prefix="a"), 0).raise_for_failure()
        store.append(aggregate_id, "ContractB", notes(2, prefix="b"), 0).raise_for_failure()
        assert [e.event.text for e in store.load(aggregate_id, "ContractA")] == ["a 1"]
        assert store.stream_version(aggregate_id, "ContractB") == 2

    def test_many_events_span_batches_and_load_in_order(self) -> None:
        """250 events in one append are all stored, in order."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        result = store.append(aggregate_id, aggregate_type, notes(250), 0)
        assert result.success and result.new_version == 250
        loaded = store.load(aggregate_id, aggregate_type)
        assert [e.event.number for e in loaded] == list(range(1, 251))

    def test_malformed_stream_addresses_are_rejected(self) -> None:
        """Empty ids, a type with ':' and a negative expected version raise before writing."""
        store = self.store()
        for aggregate_id, aggregate_type, expected in [
            ("", "T", 0),
            ("a", "", 0),
            ("a", "Bad:Type", 0),
            ("a", "T", -1),
        ]:
            try:
                store.append(aggregate_id, aggregate_type, notes(1), expected)
            except InvalidStreamError:
                continue
            raise AssertionError(f"({aggregate_id!r}, {aggregate_type!r}, {expected}) was accepted")

    def test_oversize_event_is_rejected_and_nothing_is_written(self) -> None:
        """An event over 400 KB fails the whole append before any event is stored."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        events = [Noted("small"), Noted("x" * 420_000)]
        try:
            store.append(aggregate_id, aggregate_type, events, 0)
        except EventTooLargeError as error:
            assert error.version == 2 and error.stream_id == f"{aggregate_type}:{aggregate_id}"
        else:
            raise AssertionError("an oversize event was accepted")
        assert store.stream_version(aggregate_id, aggregate_type) == 0

    def test_racing_writers_with_one_expected_version_have_one_winner(self) -> None:
        """Of several threads appending at the same expected version, exactly one succeeds."""
        store, (aggregate_id, aggregate_type) = self.store(), stream()
        results: list[AppendResult] = []
        gate = threading.Barrier(6)

        def write(n: int) -> None:
            gate.wait()
            results.append(store.append(aggregate_id, aggregate_type, notes(3, prefix=f"w{n}"), 0))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(r.success for r in results) == 1
        assert all(r.conflict for r in results if not r.success)
        assert store.stream_version(aggregate_id, aggregate_type) == 3


def _is_conflict(result: AppendResult, *, expected: int, actual: int) -> bool:
    return (
        not result.success
        and result.conflict
        and result.expected_version == expected
        and result.actual_version == actual
        and result.error is None
    )
