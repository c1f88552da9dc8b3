"""AggregateRoot: recording, applying, routing, versions, type names."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from dynamo_es import AggregateRoot, EventMetadata, applies, event
from dynamo_es.domain.events import EventHistory, StoredEvent
from dynamo_es.exceptions import AggregateClassError, EventTypeError, InvalidStreamError, MissingHandlerError


@event(name="AggTestStarted")
@attrs.frozen
class Started:
    name: str


@event(name="AggTestTicked")
@attrs.frozen
class Ticked:
    by: int = 1


@event(name="AggTestUnhandled")
@attrs.frozen
class Unhandled:
    pass


class Counter(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.name = ""
        self.count = 0

    def start(self, name: str) -> None:
        self.record(Started(name))

    def tick(self, by: int = 1) -> None:
        if by < 1:
            raise ValueError("ticks go up")
        self.record(Ticked(by))

    @applies(Started)
    def _started(self, event: Started) -> None:
        self.name = event.name

    @applies(Ticked)
    def _ticked(self, event: Ticked) -> None:
        self.count += event.by


def stored(version: int, item: Any) -> StoredEvent:
    from datetime import UTC, datetime

    return StoredEvent(
        stream_id="Counter:c",
        aggregate_id="c",
        aggregate_type="Counter",
        version=version,
        event_id=f"e{version}",
        event_type=type(item).__name__,
        timestamp=datetime.now(UTC),
        event=item,
        metadata=EventMetadata(),
    )


class TestRecording:
    def test_record_applies_and_queues(self) -> None:
        """A command's event changes state at once and waits in uncommitted_events."""
        counter = Counter("c")
        counter.start("clock")
        counter.tick(2)
        assert (counter.name, counter.count, counter.version, counter.committed_version) == ("clock", 2, 2, 0)
        assert [e.event for e in counter.uncommitted_events] == [Started("clock"), Ticked(2)]
        assert len({e.event_id for e in counter.uncommitted_events}) == 2

    def test_record_keeps_metadata(self) -> None:
        """Metadata passed to record travels with the event."""
        counter = Counter("c")
        counter.record(Ticked(), metadata=EventMetadata(causation_id="cmd-1"))
        assert counter.uncommitted_events[0].metadata.causation_id == "cmd-1"

    def test_mark_committed_clears_the_queue(self) -> None:
        """After a save the committed version catches up."""
        counter = Counter("c")
        counter.tick()
        counter.mark_committed()
        assert counter.uncommitted_events == () and counter.committed_version == 1

    def test_event_without_handler_is_a_clear_error(self) -> None:
        """Recording an event the aggregate cannot apply names the aggregate and event."""
        counter = Counter("c")
        with pytest.raises(MissingHandlerError) as caught:
            counter.record(Unhandled())
        assert (caught.value.aggregate_type, caught.value.event_type) == ("Counter", "Unhandled")
        assert counter.uncommitted_events == () and counter.version == 0

    def test_unregistered_event_is_refused(self) -> None:
        """An object that is not a registered event cannot be recorded."""

        @attrs.frozen
        class Loose:
            pass

        with pytest.raises(EventTypeError):
            Counter("c").record(Loose())


class TestReplay:
    def test_replay_applies_without_queuing(self) -> None:
        """Rehydration applies events and takes their versions; nothing is uncommitted."""
        counter = Counter("c")
        counter.replay([stored(1, Started("x")), stored(2, Ticked(3)), stored(3, Ticked(1))])
        assert (counter.count, counter.version, counter.uncommitted_events) == (4, 3, ())
        assert counter.committed_version == 3

    def test_replay_onto_uncommitted_state_is_refused(self) -> None:
        """Replaying onto an aggregate with pending events would corrupt it."""
        counter = Counter("c")
        counter.tick()
        with pytest.raises(InvalidStreamError):
            counter.replay([stored(1, Ticked())])

    def test_a_history_replays_as_its_stored_events_would(self) -> None:
        """A load's EventHistory gives the state and version the same events as StoredEvents give."""
        events = [Started("x"), Ticked(3), Ticked(1), Started("y"), Ticked(2)]
        by_history, by_stored = Counter("c"), Counter("c")
        by_history.replay(EventHistory(tuple(events), 5))
        by_stored.replay([stored(version, item) for version, item in enumerate(events, start=1)])
        assert vars(by_history) == vars(by_stored)
        assert (by_history.count, by_history.version, by_history.committed_version) == (6, 5, 5)

    def test_an_empty_history_keeps_the_version(self) -> None:
        """Nothing after a snapshot: the aggregate stays at the version it had."""
        counter = Counter("c")
        counter.replay(EventHistory((Ticked(1),), 4))
        counter.replay(EventHistory((), 0))
        assert (counter.count, counter.version) == (1, 4)

    def test_a_history_with_an_event_it_cannot_apply_is_a_clear_error(self) -> None:
        """The first event of a class without a handler raises MissingHandlerError, as one by one."""
        with pytest.raises(MissingHandlerError) as caught:
            Counter("c").replay(EventHistory((Ticked(1), Unhandled()), 2))
        assert caught.value.event_type == "Unhandled"

    def test_a_history_onto_uncommitted_state_is_refused(self) -> None:
        """The same refusal as for stored events."""
        counter = Counter("c")
        counter.tick()
        with pytest.raises(InvalidStreamError):
            counter.replay(EventHistory((Ticked(),), 1))


class TestEventHistory:
    def test_parts_carry_the_version_of_their_last_event(self) -> None:
        """Split in parts of 2, a history of versions 4..8 gives parts ending at 5, 7 and 8."""
        history = EventHistory(tuple(Ticked(n) for n in range(5)), 8)
        parts = history.split(2)
        assert [(len(part), part.version) for part in parts] == [(2, 5), (2, 7), (1, 8)]
        assert tuple(event for part in parts for event in part.events) == history.events

    def test_an_empty_history_has_no_parts(self) -> None:
        """Nothing to replay, nothing to split."""
        assert EventHistory((), 0).split(500) == [] and len(EventHistory((), 0)) == 0


class TestTypeNamesAndRouting:
    def test_type_defaults_to_class_name_and_can_be_set(self) -> None:
        """aggregate_type is the class name unless given as a class keyword or attribute."""

        class Renamed(Counter, aggregate_type="counter"):
            pass

        class ByAttribute(Counter):
            aggregate_type = "by-attr"

        assert Counter.aggregate_type == "Counter"
        assert Renamed.aggregate_type == "counter"
        assert ByAttribute.aggregate_type == "by-attr"

    def test_type_with_colon_is_refused_at_definition(self) -> None:
        """A ':' in the aggregate type would make stream ids ambiguous."""
        with pytest.raises(InvalidStreamError):

            class Bad(AggregateRoot, aggregate_type="a:b"):
                pass

    def test_subclass_inherits_and_overrides_handlers(self) -> None:
        """Handlers are inherited; a subclass handler for the same event wins."""

        class Doubling(Counter):
            @applies(Ticked)
            def _double(self, event: Ticked) -> None:
                self.count += 2 * event.by

        doubling = Doubling("d")
        doubling.tick(3)
        doubling.start("still handled")
        assert (doubling.count, doubling.name) == (6, "still handled")

    def test_two_handlers_for_one_event_fail_at_definition(self) -> None:
        """One class may not route one event to two methods."""
        with pytest.raises(EventTypeError, match="two handlers"):

            class Twice(AggregateRoot):
                @applies(Ticked)
                def _one(self, event: Ticked) -> None: ...

                @applies(Ticked)
                def _two(self, event: Ticked) -> None: ...

    def test_applies_needs_registered_event_classes(self) -> None:
        """@applies() with nothing, or with a plain class, fails at once."""
        with pytest.raises(EventTypeError):
            applies()
        with pytest.raises(EventTypeError):
            applies(int)

    def test_bad_aggregate_id_is_refused(self) -> None:
        """An empty id cannot name a stream."""
        with pytest.raises(InvalidStreamError):
            Counter("")

    def test_repr_shows_id_version_and_pending(self) -> None:
        """The repr says which aggregate, at which version, with how much pending."""
        counter = Counter("c")
        counter.tick()
        assert repr(counter) == "<Counter 'c' v1, 1 uncommitted>"


class TestInitialization:
    def test_forgetting_super_init_names_the_fix(self) -> None:
        """Without super().__init__(), the error says to call it (not AttributeError: '_uncommitted')."""

        class Forgetful(AggregateRoot):
            def __init__(self, aggregate_id: str) -> None:
                self.count = 0

            @applies(Ticked)
            def _ticked(self, event: Ticked) -> None:
                self.count += 1

        forgetful = Forgetful("f-1")
        for use in (lambda: forgetful.record(Ticked()), lambda: forgetful.version, lambda: forgetful.id):
            with pytest.raises(
                AggregateClassError, match=r"Forgetful\.__init__ must call super\(\)\.__init__\(aggregate_id\)"
            ):
                use()
