"""Projection rules on the in-memory store: each aggregate's events in version order, each once."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from dynamo_es import (
    Change,
    ChangeKind,
    InMemoryCheckpointStore,
    InMemoryEventStore,
    Projection,
    StreamPosition,
    event,
)
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncProjection
from dynamo_es.exceptions import ProjectionError
from dynamo_es.testing._aio_contract import Blocking, LoopThread

pytestmark = pytest.mark.filterwarnings("error")


@event(name="projection-tests.Counted")
@attrs.frozen
class Counted:
    n: int


@attrs.define
class Recorder:
    """A read model that records the versions it was given, per stream, in order."""

    seen: dict[str, list[int]] = attrs.field(factory=lambda: defaultdict(list))
    fail_on: set[tuple[str, int]] = attrs.field(factory=set)

    def __call__(self, change: Change) -> None:
        key = (change.event.stream_id, change.event.version)
        if key in self.fail_on:
            raise RuntimeError(f"cannot apply {key}")
        self.seen[change.event.stream_id].append(change.event.version)


def write(store: InMemoryEventStore, streams: int, events: int) -> list[str]:
    """``events`` events on each of ``streams`` aggregates, in several appends; the stream ids."""
    ids = [f"agg-{n}" for n in range(streams)]
    for aggregate_id in ids:
        for version in range(0, events, 3):
            batch = [Counted(n) for n in range(version, min(version + 3, events))]
            store.append(aggregate_id, "Counter", batch, version).raise_for_failure()
    return [f"Counter:{i}" for i in ids]


def delivered(store: InMemoryEventStore) -> list[Change]:
    """Everything the store's change log holds, as a stream would deliver it."""
    return store.subscribe_to_changes().poll()


Make = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    """``make(name, handler, checkpoints, store, **options)``: a Projection, or an AsyncProjection on the same store.

    The async one runs on a loop thread behind a blocking facade, over an AsyncInMemoryEventStore
    sharing ``store``'s streams: the same cases, the same rules.
    """
    if request.param == "sync":
        yield Projection
        return
    runner = LoopThread()

    def make_async(name: str, handler: Any, checkpoints: Any, store: InMemoryEventStore, **options: Any) -> Any:
        return Blocking(AsyncProjection(name, handler, checkpoints, AsyncInMemoryEventStore(store), **options), runner)

    yield make_async
    runner.stop()


def in_order(model: Recorder, streams: list[str], events: int) -> bool:
    return all(model.seen[s] == list(range(1, events + 1)) for s in streams) and set(model.seen) <= set(streams)


class TestOrderingAndGaps:
    @pytest.mark.parametrize(
        "reorder",
        [
            pytest.param(lambda c, r: c, id="in-order"),
            pytest.param(lambda c, r: c[::-1], id="reversed"),
            pytest.param(lambda c, r: r.sample(c, len(c)), id="shuffled"),
            pytest.param(lambda c, r: r.sample(c + c + c[:7], len(c) * 2 + 7), id="duplicated-and-shuffled"),
            pytest.param(lambda c, r: [x for x in c if r.random() < 0.5], id="gapped"),
            pytest.param(lambda c, r: c[len(c) // 2 :], id="trimmed"),
        ],
    )
    @pytest.mark.parametrize("batch_size", [1, 7, 1000])
    def test_every_delivery_applies_each_event_once_in_version_order(
        self, make: Make, reorder: Callable[[list[Change], random.Random], list[Change]], batch_size: int
    ) -> None:
        """Whatever arrives (reordered, duplicated, gapped, trimmed), in any batching, ends in order, each once."""
        store = InMemoryEventStore()
        write(store, streams=4, events=10)
        rng = random.Random(batch_size)
        changes = reorder(delivered(store), rng)
        if not changes:
            changes = delivered(store)[-1:]
        model = Recorder()
        proj = make("test", model, InMemoryCheckpointStore(), store)
        for start in range(0, len(changes), batch_size):
            assert not proj.handle(changes[start : start + batch_size]).failed
        last_seen = {c.event.stream_id for c in changes}
        for stream in last_seen:
            highest = max(c.event.version for c in changes if c.event.stream_id == stream)
            assert model.seen[stream] == list(range(1, highest + 1))

    def test_a_gap_is_filled_from_the_store_before_the_change(self, make: Make) -> None:
        """v1 then v4 arriving: v2 and v3 are loaded from the store and applied before v4."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=4)
        changes = delivered(store)
        model = Recorder()
        outcome = make("test", model, InMemoryCheckpointStore(), store).handle([changes[0], changes[3]])
        assert model.seen[stream] == [1, 2, 3, 4]
        assert (outcome.applied, outcome.backfilled) == (4, 2)

    def test_duplicates_and_old_versions_are_skipped_across_batches(self, make: Make) -> None:
        """A batch redelivered later, or a version at or below the last applied, changes nothing."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=5)
        changes = delivered(store)
        model = Recorder()
        proj = make("test", model, InMemoryCheckpointStore(), store)
        proj.handle(changes)
        outcome = proj.handle(changes[::-1])
        assert (outcome.applied, outcome.skipped) == (0, 5)
        assert model.seen[stream] == [1, 2, 3, 4, 5]

    def test_baseline_history_starts_at_the_first_version_seen(self, make: Make) -> None:
        """A notifier that must not act on history takes the first version it sees as its start."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=6)
        changes = delivered(store)
        model = Recorder()
        proj = make("test", model, InMemoryCheckpointStore(), store, history="baseline")
        proj.handle([changes[3]])
        proj.handle([changes[5]])
        assert model.seen[stream] == [4, 5, 6]  # the baseline is v4; the later gap is still filled

    def test_modifications_pass_only_when_asked(self, make: Make) -> None:
        """An outbox mark (MODIFY) reaches the handler only with kinds including MODIFY."""
        store = InMemoryEventStore()
        write(store, streams=1, events=1)
        store.mark_dispatched("agg-0", "Counter", 1)
        kinds: list[ChangeKind] = []
        everything = frozenset(ChangeKind)
        make("test", Recorder(), InMemoryCheckpointStore(), store).handle(delivered(store))
        make("all", lambda c: kinds.append(c.kind), InMemoryCheckpointStore(), store, kinds=everything).handle(
            delivered(store)
        )
        assert kinds == [ChangeKind.INSERT, ChangeKind.MODIFY]


class TestFailures:
    def test_the_failure_report_names_the_lowest_unapplied_sequence_number(self, make: Make) -> None:
        """Delivered v1, v3, v2 with v2 failing: Lambda must redeliver from v3's record, which came first."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=3)
        v1, v2, v3 = delivered(store)
        v1, v3, v2 = (attrs.evolve(c, sequence_number=str(n)) for n, c in enumerate((v1, v3, v2), start=1))
        model = Recorder(fail_on={(stream, 2)})
        proj = make("test", model, InMemoryCheckpointStore(), store)
        outcome = proj.handle([v1, v3, v2])
        assert [c.sequence_number for c in outcome.failed] == [v3.sequence_number]
        model.fail_on.clear()
        proj.handle([v3, v2])  # what Lambda redelivers from there
        assert model.seen[stream] == [1, 2, 3]

    def test_baseline_survives_a_failure_of_its_first_event(self, make: Make) -> None:
        """A baseline consumer whose first event failed still never replays the history before it."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=4)
        changes = delivered(store)
        model = Recorder(fail_on={(stream, 3)})
        proj = make("test", model, InMemoryCheckpointStore(), store, history="baseline")
        assert proj.handle(changes[2:]).failed
        model.fail_on.clear()
        proj.handle(changes[2:])
        assert model.seen[stream] == [3, 4]

    def test_failures_are_counted_per_version(self, make: Make) -> None:
        """A failure of another version starts the count again, so it does not park early."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=3)
        changes = delivered(store)
        model = Recorder(fail_on={(stream, 2)})
        proj = make("test", model, InMemoryCheckpointStore(), store, max_attempts=2)
        proj.handle(changes)
        model.fail_on = {(stream, 3)}
        outcome = proj.handle(changes)
        assert not outcome.parked and model.seen[stream] == [1, 2]

    def test_a_non_insert_delivered_twice_in_a_batch_is_applied_once(self, make: Make) -> None:
        """The same MODIFY record twice in one batch (a Kinesis duplicate) reaches the handler once."""
        store = InMemoryEventStore()
        write(store, streams=1, events=1)
        store.mark_dispatched("agg-0", "Counter", 1)
        modify = delivered(store)[-1]
        seen: list[ChangeKind] = []
        kinds = frozenset({ChangeKind.MODIFY})
        make("m", lambda c: seen.append(c.kind), InMemoryCheckpointStore(), store, kinds=kinds).handle([modify, modify])
        assert seen == [ChangeKind.MODIFY]

    def test_a_failing_event_stops_only_its_aggregate(self, make: Make) -> None:
        """Later events of the failing aggregate are not applied; other aggregates are."""
        store = InMemoryEventStore()
        first, second = write(store, streams=2, events=4)
        model = Recorder(fail_on={(first, 2)})
        outcome = make("test", model, InMemoryCheckpointStore(), store, max_attempts=None).handle(delivered(store))
        assert model.seen[first] == [1] and model.seen[second] == [1, 2, 3, 4]
        assert [(c.event.stream_id, c.event.version) for c in outcome.failed] == [(first, 2)]
        assert isinstance(outcome.errors[0].__cause__, RuntimeError)

    def test_redelivery_after_a_fix_continues_where_it_stopped(self, make: Make) -> None:
        """Delivered again, the failed aggregate resumes at the failed version; nothing is applied twice."""
        store = InMemoryEventStore()
        first, second = write(store, streams=2, events=4)
        model = Recorder(fail_on={(first, 2)})
        proj = make("test", model, InMemoryCheckpointStore(), store)
        proj.handle(delivered(store))
        model.fail_on.clear()
        proj.handle(delivered(store))
        assert model.seen[first] == [1, 2, 3, 4] and model.seen[second] == [1, 2, 3, 4]

    def test_poison_event_parks_its_aggregate_after_max_attempts(self, make: Make) -> None:
        """After max_attempts failures the aggregate is parked and skipped; replay after a fix catches up."""
        store = InMemoryEventStore()
        first, _second = write(store, streams=2, events=4)
        model = Recorder(fail_on={(first, 3)})
        proj = make("test", model, InMemoryCheckpointStore(), store, max_attempts=2)
        assert proj.handle(delivered(store)).failed
        outcome = proj.handle(delivered(store))
        assert outcome.parked == (first,) and not outcome.failed
        store.append("agg-0", "Counter", [Counted(99)], 4).raise_for_failure()
        proj.handle(delivered(store)[-1:])
        assert model.seen[first] == [1, 2]  # behind, not wrong
        assert proj.parked()[first].error == f"RuntimeError: cannot apply ('{first}', 3)"
        model.fail_on.clear()
        assert proj.replay_parked().applied == 3
        assert model.seen[first] == [1, 2, 3, 4, 5] and proj.parked() == {}

    def test_a_stream_failing_again_in_replay_is_parked_again(self, make: Make) -> None:
        """Replay of a still-broken aggregate parks it again at once, applying nothing wrong."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=3)
        model = Recorder(fail_on={(stream, 2)})
        proj = make("test", model, InMemoryCheckpointStore(), store, max_attempts=1)
        assert proj.handle(delivered(store)).parked == (stream,)
        assert proj.replay_parked([stream]).parked == (stream,)
        assert model.seen[stream] == [1]


class TestRunOnTheMemoryStore:
    def test_run_follows_appends_and_resumes_from_the_checkpoint(self, make: Make) -> None:
        """run() applies everything once; a second run with the same checkpoints sees only what is new."""
        store = InMemoryEventStore()
        streams = write(store, streams=3, events=5)
        checkpoints = InMemoryCheckpointStore()
        model = Recorder()
        assert make("p", model, checkpoints, store).run(stop_when_idle=True) == 15
        store.append("agg-0", "Counter", [Counted(5)], 5).raise_for_failure()
        assert make("p", model, checkpoints, store).run(stop_when_idle=True) == 1
        assert model.seen[streams[0]] == [1, 2, 3, 4, 5, 6]

    def test_run_parks_a_poison_event_and_moves_on(self, make: Make) -> None:
        """A handler that keeps failing on one event costs that aggregate only; the run finishes."""
        store = InMemoryEventStore()
        first, second = write(store, streams=2, events=3)
        model = Recorder(fail_on={(first, 1)})
        proj = make("p", model, InMemoryCheckpointStore(), store, max_attempts=2, retry_delay=0.001)
        assert proj.run(stop_when_idle=True) == 3
        assert first not in model.seen and model.seen[second] == [1, 2, 3]

    def test_run_without_parking_raises(self, make: Make) -> None:
        """With max_attempts=None a failure ends run() with the ProjectionError."""
        store = InMemoryEventStore()
        (stream,) = write(store, streams=1, events=2)
        proj = make("p", Recorder(fail_on={(stream, 2)}), InMemoryCheckpointStore(), store, max_attempts=None)
        with pytest.raises(ProjectionError, match="version 2"):
            proj.run(stop_when_idle=True)

    def test_stop_from_another_thread_ends_a_live_run(self, make: Make) -> None:
        """A run that waits for changes returns once stop() is called."""
        store = InMemoryEventStore()
        proj = make("p", Recorder(), InMemoryCheckpointStore(), store)
        runner = threading.Thread(target=proj.run)
        runner.start()
        write(store, streams=1, events=2)
        proj.stop()
        runner.join(timeout=5)
        assert not runner.is_alive()


@attrs.define
class TrimmingStore(InMemoryEventStore):
    """A memory store whose subscription reports trimmed records, as DynamoDB Streams does after 24 h."""

    def subscribe_to_changes(self, position: object = None, *, start_at: str = "trim_horizon") -> TrimmedFeed:  # type: ignore[override]
        return TrimmedFeed(InMemoryEventStore.subscribe_to_changes(self).poll()[-1:])


@attrs.define
class TrimmedFeed:
    """Delivers only the newest change and says that the records before it were lost."""

    batch: list[Change]
    records_lost: int = 0
    stopped: bool = False
    position: StreamPosition = attrs.field(factory=StreamPosition)

    def start(self) -> TrimmedFeed:
        return self

    def stop(self) -> None:
        self.stopped = True

    def batches(self, *, stop_when_idle: bool = False) -> Iterator[list[Change]]:
        self.records_lost += 1
        yield self.batch


class TestTrimmedStream:
    def test_records_lost_to_trimming_are_caught_up_from_the_table(self) -> None:
        """Aggregates whose records were all trimmed still reach the read model, once and in order."""
        store = TrimmingStore()
        streams = write(store, streams=3, events=4)
        model = Recorder()
        Projection("p", model, InMemoryCheckpointStore(), store).run(stop_when_idle=True)
        assert in_order(model, streams, 4)


class TestRebuild:
    def test_rebuild_with_concurrent_writers_loses_and_duplicates_nothing(self, make: Make) -> None:
        """While writers append, a rebuild from the table then the live log applies every event once, in order."""
        store = InMemoryEventStore()
        write(store, streams=10, events=20)
        model = Recorder()
        writing = threading.Event()

        def writer() -> None:
            for round_ in range(20, 40, 2):
                for n in range(10):
                    store.append(f"agg-{n}", "Counter", [Counted(round_), Counted(round_ + 1)], round_)
            writing.set()

        proj = make("rebuild", model, InMemoryCheckpointStore(), store)
        thread = threading.Thread(target=writer)
        thread.start()
        progress = proj.rebuild(segments=2, stop_when_idle=True)
        thread.join()
        assert writing.is_set()
        proj.run(stop_when_idle=True)  # whatever came after the rebuild went idle
        assert in_order(model, [f"Counter:agg-{n}" for n in range(10)], 40)
        assert progress.done and progress.read >= 200

    def test_a_rebuild_stopped_midway_leaves_the_projection_able_to_run(self, make: Make) -> None:
        """stop() during a rebuild ends it (not done); a later run() follows the store as usual."""
        store = InMemoryEventStore()
        streams = write(store, streams=3, events=4)
        model = Recorder()
        proj = make("p", model, InMemoryCheckpointStore(), store)
        target = getattr(proj, "target", proj)  # called back on the async runner's own loop
        progress = proj.rebuild(segments=1, on_progress=lambda _: target.stop())
        store.append("agg-0", "Counter", [Counted(4)], 4).raise_for_failure()
        assert not progress.done
        assert proj.run(stop_when_idle=True) >= 1
        assert model.seen[streams[0]] == [1, 2, 3, 4, 5]
