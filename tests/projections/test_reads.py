"""What a projection reads: foreign records skipped undecoded; bad ones fail only their own aggregate."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import attrs
import pytest

from dynamo_es import (
    AggregateRoot,
    Change,
    EventRegistry,
    EventSerializer,
    InMemoryCheckpointStore,
    InMemoryEventStore,
    Projection,
    Selection,
    UnitOfWork,
    applies,
    event,
    handles,
    process_manager,
)
from dynamo_es.exceptions import ConfigurationError, EventTypeError, SerializationError, UnknownEventTypeError

from .test_projection import Make
from .test_projection import make as make  # the sync/async runner fixture

FOREIGN = EventRegistry()
"""Another service's events: this process does not register them."""
FOREIGN_TYPES = [f"billing.Event{n}" for n in range(5)]


@event(name="reads-tests.Added")
@attrs.frozen
class Added:
    n: int


@event(name="reads-tests.Renamed")
@attrs.frozen
class Renamed:
    name: str


@attrs.frozen
class ForeignEvent:
    payload: str


def foreign_serializer() -> EventSerializer:
    """A serializer knowing this process's events and the foreign service's five types."""
    registry = EventRegistry()
    for name in ("reads-tests.Added", "reads-tests.Renamed"):
        cls, _ = EventSerializer().registry.resolve(name) or (None, 0)
        assert cls is not None
        registry.register(cls, name=name)
    for name in FOREIGN_TYPES:
        registry.register(attrs.make_class(name.replace(".", "_"), {"payload": attrs.field()}, frozen=True), name=name)
    return EventSerializer(registry=registry)


def foreign(serializer: EventSerializer, name: str, payload: str) -> Any:
    cls, _ = serializer.registry.resolve(name) or (None, 0)
    assert cls is not None
    return cls(payload)


def shared_table(streams: int = 4, events: int = 6, *, seed: int = 1) -> tuple[InMemoryEventStore, int]:
    """Counters and another service's invoices written interleaved; this process's store and the foreign count.

    The store is written through a serializer that knows every type, then given this process's
    serializer, which knows none of the foreign ones: what a shared table looks like from here.
    """
    rng = random.Random(seed)
    writer = foreign_serializer()
    store = InMemoryEventStore(serializer=writer)
    versions: dict[tuple[str, str], int] = defaultdict(int)
    foreign_count = 0
    for n in range(events):
        for s in range(streams):
            store.append(f"c-{s}", "Counter", [Added(n)], versions["Counter", f"c-{s}"]).raise_for_failure()
            versions["Counter", f"c-{s}"] += 1
            name = rng.choice(FOREIGN_TYPES)
            store.append(f"i-{s}", "Invoice", [foreign(writer, name, "x")], versions["Invoice", f"i-{s}"])
            versions["Invoice", f"i-{s}"] += 1
            foreign_count += 1
    store.serializer = EventSerializer()
    return store, foreign_count


@attrs.define
class Totals:
    """A read model declaring what it reads: the versions of Added it saw, per stream."""

    seen: dict[str, list[int]] = attrs.field(factory=lambda: defaultdict(list))

    @handles(Added)
    def added(self, change: Change) -> None:
        self.seen[change.event.stream_id].append(change.event.version)


def in_order(model: Totals, streams: int, events: int) -> bool:
    return dict(model.seen) == {f"Counter:c-{s}": list(range(1, events + 1)) for s in range(streams)}


class TestASharedTable:
    def test_foreign_event_types_are_skipped_and_counted(self, make: Make) -> None:
        """Five unregistered types interleaved with ours: every read event applied once, in order, 0 failures."""
        store, foreign_count = shared_table()
        model = Totals()
        projection = make("totals", model, InMemoryCheckpointStore(), store)
        outcome = projection.handle(store.subscribe_to_changes().poll())
        assert in_order(model, 4, 6)
        assert (outcome.failed, outcome.parked, outcome.applied) == ((), (), 24)
        assert outcome.unread == foreign_count and outcome.skipped >= foreign_count

    def test_run_follows_a_shared_table_to_the_end(self, make: Make) -> None:
        """Projection.run() on the store's subscription neither raises nor parks; a restart changes nothing."""
        store, _ = shared_table()
        checkpoints = InMemoryCheckpointStore()
        model = Totals()
        assert make("totals", model, checkpoints, store).run(stop_when_idle=True) == 24
        assert make("totals", model, checkpoints, store).run(stop_when_idle=True) == 0
        assert in_order(model, 4, 6) and checkpoints.parked("totals") == {}

    def test_a_plain_handler_with_a_selection_reads_the_same(self, make: Make) -> None:
        """reads=[Added] on a plain callable skips the rest as @handles does."""
        store, foreign_count = shared_table()
        seen: list[str] = []
        checkpoints = InMemoryCheckpointStore()
        projection = make(
            "plain", lambda c: seen.append(type(c.event.event).__name__), checkpoints, store, reads=[Added]
        )
        outcome = projection.handle(store.subscribe_to_changes().poll())
        assert seen == ["Added"] * 24 and outcome.unread == foreign_count

    def test_a_selection_by_aggregate_type(self, make: Make) -> None:
        """Selection(aggregate_types=[...]) reads every event of those streams and nothing else."""
        store, foreign_count = shared_table()
        seen: list[str] = []
        projection = make("by-type", lambda c: seen.append(c.event.aggregate_type), InMemoryCheckpointStore(), store,
                          reads=Selection(aggregate_types=["Counter"]))  # fmt: skip
        outcome = projection.handle(store.subscribe_to_changes().poll())
        assert seen == ["Counter"] * 24 and outcome.unread == foreign_count and not outcome.failed

    def test_the_foreign_records_are_never_decoded(self) -> None:
        """Records outside the selection arrive unread: their event is None, nothing was decoded."""
        store, foreign_count = shared_table()
        changes = store.subscribe_to_changes(reads=Selection([Added])).poll()
        unread = [c for c in changes if c.unread]
        assert len(unread) == foreign_count
        assert {c.event.event for c in unread} == {None} and {c.event.event_type for c in unread} <= set(FOREIGN_TYPES)

    def test_rebuild_counts_the_unread_events(self, make: Make) -> None:
        """A rebuild reads the table, applies what it reads, and reports the rest as unread."""
        store, foreign_count = shared_table()
        model = Totals()
        progress = make("rebuilt", model, InMemoryCheckpointStore(), store).rebuild(follow=False)
        assert in_order(model, 4, 6) and (progress.read, progress.unread) == (24 + foreign_count, foreign_count)


def counter_stream(store: InMemoryEventStore, events: list[Any], aggregate_id: str = "c-1") -> str:
    store.append(aggregate_id, "Counter", events, 0).raise_for_failure()
    return f"Counter:{aggregate_id}"


class TestUnreadVersions:
    def test_an_unread_version_moves_the_stream_forward(self, make: Make) -> None:
        """v1 read, v2 unread: the saved version is 2, so v3 arriving later needs no gap filling."""
        store = InMemoryEventStore()
        stream = counter_stream(store, [Added(1), Renamed("x"), Added(3)])
        changes = store.subscribe_to_changes().poll()
        checkpoints = InMemoryCheckpointStore()
        model = Totals()
        projection = make("totals", model, checkpoints, store)
        projection.handle(changes[:2])
        assert checkpoints.load_progress("totals", [stream])[stream].version == 2
        outcome = projection.handle(changes[2:])
        assert model.seen[stream] == [1, 3] and outcome.backfilled == 0

    def test_gap_filling_skips_unread_versions_undecoded(self, make: Make) -> None:
        """Only v4 delivered: v1-v3 are loaded; the unregistered v2 is skipped, not failed; v1, v3, v4 applied."""
        writer = foreign_serializer()
        store = InMemoryEventStore(serializer=writer)
        stream = counter_stream(store, [Added(1), foreign(writer, FOREIGN_TYPES[0], "y"), Added(3), Added(4)])
        store.serializer = EventSerializer()
        model = Totals()
        outcome = make("totals", model, InMemoryCheckpointStore(), store).handle(
            store.subscribe_to_changes().poll()[3:]
        )
        assert model.seen[stream] == [1, 3, 4]
        assert (outcome.backfilled, outcome.unread, outcome.failed) == (2, 1, ())

    def test_replaying_a_parked_stream_skips_unread_versions(self, make: Make) -> None:
        """replay_parked applies the read versions after the parked one and steps over the unread ones."""
        store = InMemoryEventStore()
        stream = counter_stream(store, [Added(1), Added(2), Renamed("x"), Added(4)])
        broken = Totals()
        fails = {2}

        def apply(change: Change) -> None:
            if change.event.version in fails:
                raise RuntimeError("not yet")
            broken.seen[change.event.stream_id].append(change.event.version)

        checkpoints = InMemoryCheckpointStore()
        projection = make("p", apply, checkpoints, store, max_attempts=1, reads=[Added])
        assert projection.handle(store.subscribe_to_changes().poll()).parked == (stream,)
        fails.clear()
        outcome = projection.replay_parked()
        assert broken.seen[stream] == [1, 2, 4] and outcome.unread == 1 and checkpoints.parked("p") == {}


@event(name="reads-tests.Typed")
@attrs.frozen
class Typed:
    n: int


def bad_data_store() -> tuple[InMemoryEventStore, str, str]:
    """Counter:unknown holds an unregistered type, Counter:undecodable data that does not fit; Counter:good is fine."""
    writer = foreign_serializer()
    loose = EventRegistry()
    loose.register(attrs.make_class("Loose", {"n": attrs.field()}, frozen=True), name="reads-tests.Typed")
    store = InMemoryEventStore(serializer=writer)
    good = counter_stream(store, [Added(1), Added(2)], "good")
    unknown = counter_stream(store, [Added(1), foreign(writer, FOREIGN_TYPES[1], "z")], "unknown")
    store.serializer = EventSerializer(registry=loose)
    bad_cls, _ = loose.resolve("reads-tests.Typed") or (None, 0)
    assert bad_cls is not None
    store.append("undecodable", "Counter", [bad_cls("not a number")], 0).raise_for_failure()
    store.serializer = EventSerializer()
    return store, good, unknown


class TestUndecodableRecords:
    def test_they_park_only_their_own_aggregate(self, make: Make) -> None:
        """An unregistered type and undecodable data within the selection park their streams; the rest finish."""
        store, good, unknown = bad_data_store()
        seen: list[str] = []
        checkpoints = InMemoryCheckpointStore()
        projection = make("all", lambda c: seen.append(c.event.stream_id), checkpoints, store, max_attempts=2,
                          reads=Selection(aggregate_types=["Counter"]), retry_delay=0.001)  # fmt: skip
        assert projection.run(stop_when_idle=True) == 3
        parked = checkpoints.parked("all")
        assert set(parked) == {unknown, "Counter:undecodable"} and seen.count(good) == 2
        assert "UnknownEventTypeError" in (parked[unknown].error or "")
        assert "SerializationError" in (parked["Counter:undecodable"].error or "")
        assert (parked[unknown].version, parked[unknown].failures) == (1, 2)

    def test_a_failure_is_reported_for_redelivery_until_parked(self, make: Make) -> None:
        """Below max_attempts, the bad record is a failed change (Lambda's partial batch response names it)."""
        store, _, unknown = bad_data_store()
        projection = make("lambda", lambda c: None, InMemoryCheckpointStore(), store, max_attempts=3)
        outcome = projection.handle(store.subscribe_to_changes().poll())
        assert {c.event.stream_id for c in outcome.failed} == {unknown, "Counter:undecodable"}
        assert all(isinstance(e.__cause__, SerializationError) for e in outcome.errors)

    def test_a_raw_subscription_iterates_past_them(self) -> None:
        """The subscription hands over a change carrying the error; the loop goes on to the next record."""
        store, good, unknown = bad_data_store()
        changes = store.subscribe_to_changes().poll()
        errors = [c for c in changes if c.error is not None]
        assert [(c.event.stream_id, c.event.version) for c in errors] == [(unknown, 2), ("Counter:undecodable", 1)]
        assert isinstance(errors[0].error, UnknownEventTypeError) and errors[0].event.event is None
        assert [c.event.stream_id for c in changes if c.decoded].count(good) == 2

    def test_load_stays_strict(self) -> None:
        """An aggregate needs every event: load raises for the unregistered one, naming the stream and version."""
        store, _, _ = bad_data_store()
        with pytest.raises(UnknownEventTypeError, match="Counter:unknown version 2"):
            store.load("unknown", "Counter")

    def test_a_failing_upcaster_fails_only_its_aggregate(self, make: Make) -> None:
        """An upcaster that raises makes a SerializationError for that record, counted against its stream."""
        registry = EventRegistry()
        old = attrs.make_class("Old", {"n": attrs.field()}, frozen=True)
        registry.register(old, name="reads-tests.Upcast", version=1)
        store = InMemoryEventStore(serializer=EventSerializer(registry=registry))
        store.append("u", "Counter", [old(1)], 0).raise_for_failure()
        store.append("ok", "Counter", [old(2)], 0).raise_for_failure()
        new = attrs.make_class("New", {"n": attrs.field()}, frozen=True)
        later = EventRegistry()
        later.register(new, name="reads-tests.Upcast", version=2)

        def upcast(data: dict[str, Any]) -> dict[str, Any]:
            if data["n"] == 1:
                raise LookupError("no such customer")
            return data

        later.add_upcaster("reads-tests.Upcast", 1, upcast)
        store.serializer = EventSerializer(registry=later)
        seen: list[str] = []
        projection = make("up", lambda c: seen.append(c.event.stream_id), InMemoryCheckpointStore(), store,
                          max_attempts=1)  # fmt: skip
        outcome = projection.handle(store.subscribe_to_changes().poll())
        assert outcome.parked == ("Counter:u",) and seen == ["Counter:ok"]


class TestNoSilentDrops:
    def test_a_returned_value_without_effects_is_refused(self, make: Make) -> None:
        """A handler returning writes on a projection without effects= raises ConfigurationError naming the fix."""
        store = InMemoryEventStore()
        counter_stream(store, [Added(1)])
        projection = make("drops", lambda c: {"Put": {"TableName": "ReadModel"}}, InMemoryCheckpointStore(), store)
        with pytest.raises(ConfigurationError, match="effects="):
            projection.handle(store.subscribe_to_changes().poll())

    def test_none_is_fine(self, make: Make) -> None:
        """A handler returning None is applied as before."""
        store = InMemoryEventStore()
        counter_stream(store, [Added(1)])
        assert (
            make("ok", lambda c: None, InMemoryCheckpointStore(), store)
            .handle(store.subscribe_to_changes().poll())
            .applied
            == 1
        )


class TestDeclarations:
    def test_a_handler_class_declares_its_selection(self) -> None:
        """Projection.selection is the @handles classes' type names."""
        projection = Projection("t", Totals(), InMemoryCheckpointStore(), InMemoryEventStore())
        assert projection.selection == Selection(["reads-tests.Added"])

    def test_a_handler_class_with_reads_is_refused(self) -> None:
        """A @handles object declares what it reads; giving reads= too is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="drop reads="):
            Projection("t", Totals(), InMemoryCheckpointStore(), InMemoryEventStore(), reads=[Renamed])

    def test_two_handlers_for_one_class_are_refused(self) -> None:
        """Two @handles methods for the same event class in one class raise EventTypeError."""

        class Twice:
            @handles(Added)
            def one(self, change: Change) -> None: ...

            @handles(Added)
            def two(self, change: Change) -> None: ...

        with pytest.raises(EventTypeError, match="two handlers"):
            Projection("t", Twice(), InMemoryCheckpointStore(), InMemoryEventStore())

    def test_handles_needs_registered_classes(self) -> None:
        """@handles of an unregistered class fails at once."""
        with pytest.raises(EventTypeError):
            handles(ForeignEvent)

    def test_an_object_that_is_not_a_handler_is_refused(self) -> None:
        """Neither callable nor @handles: ConfigurationError when the projection is built."""
        with pytest.raises(ConfigurationError, match="neither callable"):
            Projection("t", object(), InMemoryCheckpointStore(), InMemoryEventStore())


@event(name="reads-tests.Noted")
@attrs.frozen
class Noted:
    about: str


class Note(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.about = ""

    @applies(Noted)
    def _noted(self, event: Noted) -> None:
        self.about = event.about


class TestProcessManagers:
    def test_a_policy_class_reads_only_its_events(self) -> None:
        """A @handles policy reacts to its event class once each; foreign records are skipped undecoded."""
        store, foreign_count = shared_table(streams=2, events=2)

        class Notes:
            @handles(Added)
            def added(self, change: Change, unit: UnitOfWork) -> None:
                note = Note(f"{change.event.stream_id}-v{change.event.version}")
                note.record(Noted(change.event.stream_id))
                unit.add(note)

        manager = process_manager("notes", Notes(), store)
        outcome = manager.handle(store.subscribe_to_changes().poll())
        assert outcome.applied == 4 and outcome.unread >= foreign_count and not outcome.failed
        assert store.load("Counter:c-0-v2", "Note")[0].event == Noted("Counter:c-0")
