"""Snapshots: strategy, stores, and loads equal to full replay (including time travel)."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import attrs
import pytest

from dynamo_es import (
    AggregateRoot,
    DynamoDBEventStore,
    DynamoDBSnapshotStore,
    EventStore,
    EventStoreSettings,
    EveryNEvents,
    InMemoryEventStore,
    InMemorySnapshotStore,
    Repository,
    Snapshot,
    SnapshotStore,
    applies,
    event,
)
from dynamo_es.dynamodb.aio import AsyncDynamoDBSnapshotStore
from dynamo_es.exceptions import SnapshotError
from dynamo_es.testing._aio_contract import Blocking, LoopThread


@attrs.frozen
class Entry:
    label: str
    amount: Decimal


@event(name="SnapBooked")
@attrs.frozen
class Booked:
    entry: Entry
    tag: str


@event(name="SnapRenamed")
@attrs.frozen
class Renamed:
    owner: str


class Ledger(AggregateRoot, aggregate_type="SnapLedger"):
    owner: str
    total: Decimal
    entries: list[Entry]
    tags: dict[str, int]

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = ""
        self.total = Decimal(0)
        self.entries = []
        self.tags = {}

    def book(self, label: str, amount: Decimal, tag: str) -> None:
        self.record(Booked(Entry(label, amount), tag))

    def rename(self, owner: str) -> None:
        self.record(Renamed(owner))

    @applies(Booked)
    def _booked(self, event: Booked) -> None:
        self.total += event.entry.amount
        self.entries.append(event.entry)
        self.tags[event.tag] = self.tags.get(event.tag, 0) + 1

    @applies(Renamed)
    def _renamed(self, event: Renamed) -> None:
        self.owner = event.owner

    def state(self) -> tuple[Any, ...]:
        return self.owner, self.total, self.entries, self.tags, self.version


class LedgerV2(Ledger, aggregate_type="SnapLedger"):
    snapshot_version = 2


class Unannotated(AggregateRoot, aggregate_type="SnapUnannotated"):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.count = 0

    @applies(Renamed)
    def _renamed(self, event: Renamed) -> None:
        self.count += 1


@attrs.define
class RecordingStore(InMemoryEventStore):
    """An in-memory store that remembers the version each load (or history, for a replay) started from."""

    loads_from: list[int] = attrs.field(factory=list, init=False)

    def load(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Any:
        self.loads_from.append(from_version)
        return super().load(aggregate_id, aggregate_type, from_version=from_version, to_version=to_version)

    def load_history(
        self, aggregate_id: str, aggregate_type: str, *, from_version: int = 1, to_version: int | None = None
    ) -> Any:
        self.loads_from.append(from_version)
        return super().load_history(aggregate_id, aggregate_type, from_version=from_version, to_version=to_version)


def random_history(repository: Repository[Ledger], rng: random.Random, *, saves: int) -> str:
    """A ledger built by ``saves`` saves of 1-25 random commands each; returns its id."""
    ledger = Ledger(f"ledger-{uuid.uuid4()}")
    for _ in range(saves):
        for _ in range(rng.randint(1, 25)):
            if rng.random() < 0.1:
                ledger.rename(rng.choice(["ada", "grace", "edsger"]))
            else:
                ledger.book(f"e{rng.randint(0, 999)}", Decimal(rng.randint(-500, 500)) / 100, rng.choice("abc"))
        repository.save(ledger)
    return ledger.id


class TestStrategy:
    @pytest.mark.parametrize(
        ("previous", "new", "expected"),
        [(0, 9, False), (0, 10, True), (9, 10, True), (10, 19, False), (15, 35, True), (20, 20, False)],
    )
    def test_every_n_events_fires_when_a_save_crosses_a_multiple(self, previous: int, new: int, expected: bool) -> None:
        """EveryNEvents(10) snapshots when a save passes 10, 20, 30, ..."""
        assert EveryNEvents(10).should_snapshot(previous, new) is expected

    def test_n_must_be_positive(self) -> None:
        """EveryNEvents(0) is refused."""
        with pytest.raises(ValueError, match="must be >= 1"):
            EveryNEvents(0)


@pytest.fixture(params=["memory", "dynamodb", "async-dynamodb"])
def snapshot_store(request: pytest.FixtureRequest) -> Iterator[SnapshotStore]:
    """Every snapshot store: in memory, DynamoDB, and the async DynamoDB store (awaited on a loop thread)."""
    if request.param == "memory":
        yield InMemorySnapshotStore()
        return
    request.applymarker(pytest.mark.ddblocal)
    settings = request.getfixturevalue("events_table")
    if request.param == "dynamodb":
        yield DynamoDBSnapshotStore(settings)
        return
    runner, store = LoopThread(), AsyncDynamoDBSnapshotStore(settings)
    yield cast(SnapshotStore, Blocking(store, runner))
    runner.run(store.close())
    runner.stop()


class TestSnapshotStores:
    def test_latest_at_or_below_a_version(self, snapshot_store: SnapshotStore) -> None:
        """load_latest returns the newest snapshot, or the newest at or below max_version."""
        aggregate_id = str(uuid.uuid4())
        assert snapshot_store.load_latest("SnapLedger", aggregate_id) is None
        for version in (10, 20, 30):
            snapshot_store.save(
                Snapshot(
                    aggregate_type="SnapLedger",
                    aggregate_id=aggregate_id,
                    version=version,
                    schema_version=1,
                    state="{}",
                )
            )
        latest = snapshot_store.load_latest("SnapLedger", aggregate_id)
        assert latest is not None and latest.version == 30
        older = snapshot_store.load_latest("SnapLedger", aggregate_id, max_version=25)
        assert older is not None and older.version == 20
        assert snapshot_store.load_latest("SnapLedger", aggregate_id, max_version=9) is None

    def test_round_trip_keeps_every_field(self, snapshot_store: SnapshotStore) -> None:
        """A saved snapshot loads back equal."""
        snapshot = Snapshot(
            aggregate_type="SnapLedger", aggregate_id=str(uuid.uuid4()), version=7, schema_version=3, state='{"a":1}'
        )
        snapshot_store.save(snapshot)
        assert snapshot_store.load_latest("SnapLedger", snapshot.aggregate_id) == snapshot


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request: pytest.FixtureRequest) -> tuple[EventStore, SnapshotStore]:
    if request.param == "memory":
        return InMemoryEventStore(), InMemorySnapshotStore()
    request.applymarker(pytest.mark.ddblocal)
    settings: EventStoreSettings = request.getfixturevalue("events_table")
    return DynamoDBEventStore(settings), DynamoDBSnapshotStore(settings)


class TestSnapshotLoads:
    def test_snapshot_loads_equal_full_replay_over_random_histories(
        self, stores: tuple[EventStore, SnapshotStore]
    ) -> None:
        """For many random command sequences, snapshot-based get() equals full replay, at any version."""
        events, snapshots = stores
        plain = Repository(Ledger, events)
        snapshotting = Repository(Ledger, events, snapshots=snapshots, snapshot_strategy=EveryNEvents(10))
        histories = 20 if isinstance(events, InMemoryEventStore) else 4
        for seed in range(histories):
            rng = random.Random(seed)
            ledger_id = random_history(snapshotting, rng, saves=rng.randint(1, 12))
            assert snapshots.load_latest("SnapLedger", ledger_id) is not None or plain.get(ledger_id).version < 10
            assert snapshotting.get(ledger_id).state() == plain.get(ledger_id).state()
            latest = plain.get(ledger_id).version
            for version in {1, latest, *rng.sample(range(1, latest + 1), min(5, latest))}:
                assert (
                    snapshotting.get(ledger_id, version=version).state()
                    == plain.get(ledger_id, version=version).state()
                )

    def test_get_replays_only_the_events_after_the_snapshot(self) -> None:
        """With a snapshot at v20 of 25 events, get() loads from v21."""
        events = RecordingStore()
        repository = Repository(Ledger, events, snapshots=InMemorySnapshotStore(), snapshot_strategy=EveryNEvents(20))
        ledger = Ledger("l")
        for n in range(20):
            ledger.book(str(n), Decimal(1), "a")
        repository.save(ledger)
        for n in range(5):
            ledger.book(str(n), Decimal(1), "b")
        repository.save(ledger)
        events.loads_from.clear()
        assert repository.get("l").state() == ledger.state()
        assert events.loads_from == [21]
        assert repository.get("l", version=10).total == Decimal(10)
        assert events.loads_from[-1] == 1  # no snapshot at or below v10: full replay

    def test_snapshot_of_another_schema_version_is_ignored(self) -> None:
        """A class whose snapshot_version changed replays from v1 instead of misreading."""
        events, snapshots = RecordingStore(), InMemorySnapshotStore()
        old = Repository(Ledger, events, snapshots=snapshots, snapshot_strategy=EveryNEvents(5))
        ledger = Ledger("l")
        for n in range(6):
            ledger.book(str(n), Decimal(2), "a")
        old.save(ledger)
        assert snapshots.load_latest("SnapLedger", "l") is not None
        new = Repository(LedgerV2, events, snapshots=snapshots)
        events.loads_from.clear()
        assert new.get("l").state() == ledger.state()
        assert events.loads_from == [1]

    def test_unreadable_snapshot_falls_back_to_replay(self, caplog: pytest.LogCaptureFixture) -> None:
        """A snapshot whose state does not fit the class is logged and ignored."""
        events, snapshots = InMemoryEventStore(), InMemorySnapshotStore()
        repository = Repository(Ledger, events, snapshots=snapshots)
        ledger = Ledger("l")
        ledger.book("x", Decimal(3), "a")
        repository.save(ledger)
        snapshots.save(
            Snapshot(
                aggregate_type="SnapLedger", aggregate_id="l", version=1, schema_version=1, state='{"total":"lots"}'
            )
        )
        with caplog.at_level(logging.WARNING, logger="dynamo_es"):
            assert repository.get("l").state() == ledger.state()
        assert "unreadable snapshot" in caplog.text

    def test_unannotated_state_is_not_snapshotted_but_saves(self, caplog: pytest.LogCaptureFixture) -> None:
        """State without class annotations cannot be restored typed: no snapshot, a warning, a good save."""
        snapshots = InMemorySnapshotStore()
        repository = Repository(
            Unannotated, InMemoryEventStore(), snapshots=snapshots, snapshot_strategy=EveryNEvents(1)
        )
        aggregate = Unannotated("u")
        aggregate.record(Renamed("x"))
        with caplog.at_level(logging.WARNING, logger="dynamo_es"):
            assert repository.save(aggregate) == 1
        assert "annotate ['count']" in caplog.text
        assert snapshots.load_latest("SnapUnannotated", "u") is None

    def test_snapshot_state_uses_the_converter(self) -> None:
        """Decimals, nested attrs classes and dicts are stored as JSON-ready values."""
        ledger = Ledger("l")
        ledger.book("x", Decimal("1.50"), "a")
        state = ledger.snapshot_state(InMemoryEventStore().serializer.converter)
        assert state == {
            "owner": "",
            "total": "1.50",
            "entries": [{"label": "x", "amount": "1.50"}],
            "tags": {"a": 1},
        }


@pytest.mark.ddblocal
def test_oversize_snapshot_is_refused(events_table: EventStoreSettings) -> None:
    """A state over 400 KB raises SnapshotError instead of a DynamoDB error."""
    with pytest.raises(SnapshotError, match="400 KB"):
        DynamoDBSnapshotStore(events_table).save(
            Snapshot(aggregate_type="SnapLedger", aggregate_id="big", version=1, schema_version=1, state="x" * 410_000)
        )


@pytest.mark.ddblocal
def test_snapshots_table_is_separate_from_the_events_table(events_table: EventStoreSettings) -> None:
    """Snapshots go to snapshots_table_name with pk (S) and sk (N)."""
    description = DynamoDBSnapshotStore(events_table).ensure_table()
    assert description["TableName"] == events_table.snapshots_table_name != events_table.events_table_name
    assert [k["AttributeName"] for k in description["KeySchema"]] == ["pk", "sk"]
