"""Repository over both stores: get, time travel, save, conflicts, exists; and errors on load."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from dynamo_es import (
    AggregateNotFoundError,
    AggregateRoot,
    ConcurrencyError,
    DynamoDBEventStore,
    EventMetadata,
    EventStore,
    EventStoreSettings,
    EveryNEvents,
    InMemoryCheckpointStore,
    InMemoryEventStore,
    OutboxDispatcher,
    Projection,
    Repository,
    StoredEvent,
    UnitOfWork,
    applies,
    event,
    process_manager,
    upcaster,
)
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncOutboxDispatcher, AsyncRepository, AsyncUnitOfWork
from dynamo_es.exceptions import (
    AggregateClassError,
    ConfigurationError,
    InvalidStreamError,
    SerializationError,
    UnknownEventTypeError,
)
from dynamo_es.ports.store import AsyncReplayableStore, ReplayableStore

from ..conftest import Account


@event(name="RepoTestOpened")
@attrs.frozen
class Opened:
    owner: str


@event(name="RepoTestAdded", version=2)
@attrs.frozen
class Added:
    amount: int
    reason: str


@upcaster("RepoTestAdded", from_version=1)
def _added_v1_to_v2(data: dict[str, object]) -> dict[str, object]:
    return {"amount": data["value"], "reason": "migrated"}


class Tally(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = ""
        self.total = 0
        self.reasons: list[str] = []

    @classmethod
    def open(cls, aggregate_id: str, owner: str) -> Tally:
        tally = cls(aggregate_id)
        tally.record(Opened(owner))
        return tally

    def add(self, amount: int, reason: str = "") -> None:
        self.record(Added(amount, reason))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.owner = event.owner

    @applies(Added)
    def _added(self, event: Added) -> None:
        self.total += event.amount
        self.reasons.append(event.reason)

    def state(self) -> tuple[str, int, list[str], int]:
        return self.owner, self.total, self.reasons, self.version


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> EventStore:
    if request.param == "memory":
        return InMemoryEventStore()
    request.applymarker(pytest.mark.ddblocal)
    return DynamoDBEventStore(request.getfixturevalue("events_table"))


@pytest.fixture
def tallies(store: EventStore) -> Repository[Tally]:
    return Repository(Tally, store)


def new_id() -> str:
    return f"tally-{uuid.uuid4()}"


class TestGet:
    def test_round_trip(self, tallies: Repository[Tally]) -> None:
        """A saved aggregate loads back with equal state and version."""
        tally = Tally.open(new_id(), "ada")
        tally.add(3, "a")
        tally.add(4, "b")
        assert tallies.save(tally) == 3
        assert tallies.get(tally.id).state() == tally.state() == ("ada", 7, ["a", "b"], 3)

    def test_missing_aggregate_raises_not_found(self, tallies: Repository[Tally]) -> None:
        """An empty stream is AggregateNotFoundError naming type and id."""
        with pytest.raises(AggregateNotFoundError) as caught:
            tallies.get("nobody")
        assert (caught.value.aggregate_type, caught.value.aggregate_id) == ("Tally", "nobody")

    def test_time_travel(self, tallies: Repository[Tally]) -> None:
        """get(version=n) is the aggregate as it was after event n."""
        tally = Tally.open(new_id(), "ada")
        for n in range(1, 6):
            tally.add(n)
        tallies.save(tally)
        assert tallies.get(tally.id, version=1).state() == ("ada", 0, [], 1)
        assert tallies.get(tally.id, version=3).total == 1 + 2
        assert tallies.get(tally.id, version=99).version == 6
        with pytest.raises(InvalidStreamError):
            tallies.get(tally.id, version=0)

    def test_exists(self, tallies: Repository[Tally]) -> None:
        """Exists is true once the stream has an event."""
        tally = Tally.open(new_id(), "ada")
        assert not tallies.exists(tally.id)
        tallies.save(tally)
        assert tallies.exists(tally.id)

    def test_a_store_without_load_history_is_read_through_load(self, store: EventStore) -> None:
        """A store of one's own need only implement EventStore: get() replays what load() gives."""
        tally = Tally.open(new_id(), "ada")
        tally.add(3, "a")
        Repository(Tally, store).save(tally)
        plain = LoadOnly(store)
        assert not isinstance(plain, ReplayableStore)
        for repository in (Repository(Tally, plain), Repository(Tally, store)):
            assert repository.get(tally.id).state() == ("ada", 3, ["a"], 2)
            assert repository.get(tally.id, version=1).state() == ("ada", 0, [], 1)
        assert plain.loads == 2

    def test_an_async_store_without_load_history_too(self) -> None:
        """The same for AsyncRepository."""
        store = AsyncInMemoryEventStore()
        tally = Tally.open(new_id(), "ada")
        tally.add(3, "a")
        plain = AsyncLoadOnly(store)

        async def states() -> list[tuple[str, int, list[str], int]]:
            await AsyncRepository(Tally, store).save(tally)
            return [(await AsyncRepository(Tally, each).get(tally.id)).state() for each in (plain, store)]

        assert not isinstance(plain, AsyncReplayableStore)
        assert asyncio.run(states()) == [("ada", 3, ["a"], 2)] * 2
        assert plain.loads == 1


class LoadOnly:
    """An EventStore with the protocol's methods alone (no load_history), counting loads."""

    def __init__(self, store: EventStore) -> None:
        self.serializer, self.loads = store.serializer, 0
        self.append, self.append_many, self.stream_version = store.append, store.append_many, store.stream_version
        self._load = store.load

    def load(self, aggregate_id: str, aggregate_type: str, **options: Any) -> list[StoredEvent]:
        self.loads += 1
        return self._load(aggregate_id, aggregate_type, **options)


class AsyncLoadOnly:
    """The async twin of LoadOnly."""

    def __init__(self, store: AsyncInMemoryEventStore) -> None:
        self.serializer, self.loads = store.serializer, 0
        self.append, self.append_many, self.stream_version = store.append, store.append_many, store.stream_version
        self._load = store.load

    async def load(self, aggregate_id: str, aggregate_type: str, **options: Any) -> list[StoredEvent]:
        self.loads += 1
        return await self._load(aggregate_id, aggregate_type, **options)


class TestSave:
    def test_250_events_saved_once_and_reloaded_equal(self, tallies: Repository[Tally]) -> None:
        """A long history goes in one save (several transactions) and replays equal."""
        tally = Tally.open(new_id(), "ada")
        for n in range(249):
            tally.add(n, f"r{n}")
        assert tallies.save(tally) == 250
        assert tally.uncommitted_events == ()
        assert tallies.get(tally.id).state() == tally.state()

    def test_nothing_uncommitted_is_a_no_op(self, tallies: Repository[Tally]) -> None:
        """Saving an unchanged aggregate writes nothing and returns its version."""
        tally = Tally.open(new_id(), "ada")
        tallies.save(tally)
        assert tallies.save(tally) == 1
        assert tallies.store.stream_version(tally.id, "Tally") == 1

    def test_saves_continue_from_the_saved_version(self, tallies: Repository[Tally]) -> None:
        """An aggregate saved twice appends after its own previous save."""
        tally = Tally.open(new_id(), "ada")
        tallies.save(tally)
        tally.add(1)
        assert tallies.save(tally) == 2

    def test_two_loaders_exactly_one_wins(self, tallies: Repository[Tally]) -> None:
        """Two copies of one aggregate both save: one succeeds, one raises ConcurrencyError."""
        tally = Tally.open(new_id(), "ada")
        tallies.save(tally)
        first, second = tallies.get(tally.id), tallies.get(tally.id)
        first.add(1, "first")
        second.add(2, "second")
        tallies.save(first)
        with pytest.raises(ConcurrencyError) as caught:
            tallies.save(second)
        error = caught.value
        assert (error.stream_id, error.expected_version, error.actual_version) == (f"Tally:{tally.id}", 1, 2)
        assert second.uncommitted_events != ()
        assert tallies.get(tally.id).reasons == ["first"]

    def test_save_metadata_reaches_every_event(self, tallies: Repository[Tally]) -> None:
        """A correlation id given to save is stored with each event."""
        tally = Tally.open(new_id(), "ada")
        tally.add(1)
        tallies.save(tally, metadata=EventMetadata(correlation_id="req-7"))
        stored = tallies.store.load(tally.id, "Tally")
        assert {e.metadata.correlation_id for e in stored} == {"req-7"}


@pytest.mark.ddblocal
class TestStoredItems:
    """Items written outside dynamo-es (old versions, corrupt data) as they would be in a real table."""

    @pytest.fixture
    def put_raw(self, events_table: EventStoreSettings) -> Callable[..., str]:
        store = DynamoDBEventStore(events_table)

        def put(event_type: str, data: bytes, *, metadata: str = '{"schemaVersion":1}', version: int = 1) -> str:
            aggregate_id = new_id()
            store.connection.client.put_item(
                TableName=events_table.events_table_name,
                Item={
                    "pk": {"S": f"Tally:{aggregate_id}"},
                    "sk": {"N": str(version)},
                    "eventId": {"S": str(uuid.uuid4())},
                    "aggregateId": {"S": aggregate_id},
                    "aggregateType": {"S": "Tally"},
                    "eventType": {"S": event_type},
                    "version": {"N": str(version)},
                    "timestamp": {"S": "2023-03-04T05:06:07+00:00"},
                    "eventData": {"S": base64.b64encode(data).decode()},
                    "metadata": {"S": metadata},
                    "isDispatched": {"BOOL": True},
                },
            )
            return aggregate_id

        return put

    def test_old_schema_item_is_upcast_on_load(
        self, put_raw: Callable[..., str], events_table: EventStoreSettings
    ) -> None:
        """A version-1 RepoTestAdded item in the table loads as the version-2 class."""
        aggregate_id = put_raw("RepoTestAdded", b'{"value": 41}')
        tally = Repository(Tally, DynamoDBEventStore(events_table)).get(aggregate_id)
        assert (tally.total, tally.reasons, tally.version) == (41, ["migrated"], 1)

    def test_unknown_event_type_names_stream_version_and_type(
        self, put_raw: Callable[..., str], events_table: EventStoreSettings
    ) -> None:
        """An item of an unregistered type raises UnknownEventTypeError with its address."""
        aggregate_id = put_raw("RepoTestNeverDefined", b"{}")
        with pytest.raises(UnknownEventTypeError) as caught:
            Repository(Tally, DynamoDBEventStore(events_table)).get(aggregate_id)
        assert caught.value.stream_id == f"Tally:{aggregate_id}"
        assert (caught.value.version, caught.value.event_type) == (1, "RepoTestNeverDefined")

    @pytest.mark.parametrize(
        ("data", "metadata"),
        [(b"{not json", '{"schemaVersion":2}'), (b'{"amount": 1}', '{"schemaVersion":2}'), (b"{}", "oops")],
        ids=["bad-json", "missing-field", "bad-metadata"],
    )
    def test_corrupt_item_is_a_serialization_error(
        self, put_raw: Callable[..., str], events_table: EventStoreSettings, data: bytes, metadata: str
    ) -> None:
        """Corrupt data or metadata raises SerializationError naming stream, version and type."""
        aggregate_id = put_raw("RepoTestAdded", data, metadata=metadata)
        with pytest.raises(SerializationError, match=rf"Tally:{aggregate_id} version 1 \(RepoTestAdded\)"):
            Repository(Tally, DynamoDBEventStore(events_table)).get(aggregate_id)


class TestGuardRails:
    def test_an_aggregate_of_another_class_is_refused(self, memory_store: InMemoryEventStore) -> None:
        """A Repository of Tally refuses to save (or snapshot) an Account: nothing is written under its stream."""
        account = Account.open("acc-1")
        tallies: Repository[Any] = Repository(Tally, memory_store)
        with pytest.raises(AggregateClassError, match=r"a repository of Tally cannot save it .*TestAccount:acc-1"):
            tallies.save(account)
        with pytest.raises(AggregateClassError):
            tallies.take_snapshot(account)
        assert memory_store.stream_version("acc-1", "TestAccount") == 0

    def test_a_subclass_under_another_aggregate_type_is_refused(self, memory_store: InMemoryEventStore) -> None:
        """An instance of a subclass stored under its own aggregate type is another stream: refused too."""

        class Special(Tally, aggregate_type="SpecialTally"):
            pass

        with pytest.raises(AggregateClassError, match="SpecialTally"):
            Repository(Tally, memory_store).save(Special.open("t-1", "ada"))

    def test_an_async_store_is_refused_when_built(self) -> None:
        """Repository and UnitOfWork given an async store fail at once, naming the async classes to use."""
        async_store: Any = AsyncInMemoryEventStore()
        for build in (lambda: Repository(Tally, async_store), lambda: UnitOfWork(async_store)):
            with pytest.raises(ConfigurationError, match="is an async event store; use AsyncRepository"):
                build()

    def test_a_process_manager_on_an_async_store_is_refused_when_built(self) -> None:
        """process_manager() with an async store fails when built, not per event."""
        with pytest.raises(ConfigurationError, match="async event store"):
            process_manager("pm", lambda change, unit: None, AsyncInMemoryEventStore())  # type: ignore[arg-type]


class TestOptionsThatWouldDoNothing:
    def test_a_snapshot_strategy_without_a_snapshot_store_is_refused(self, memory_store: InMemoryEventStore) -> None:
        """A strategy without snapshots= would never snapshot: repositories, units and process managers refuse it."""
        strategy = EveryNEvents(10)
        builds = [
            lambda: Repository(Tally, memory_store, snapshot_strategy=strategy),
            lambda: UnitOfWork(memory_store, snapshot_strategy=strategy),
            lambda: AsyncRepository(Tally, AsyncInMemoryEventStore(), snapshot_strategy=strategy),
            lambda: AsyncUnitOfWork(AsyncInMemoryEventStore(), snapshot_strategy=strategy),
            lambda: process_manager("pm", lambda change, unit: None, memory_store, snapshot_strategy=strategy),
        ]
        for build in builds:
            with pytest.raises(ConfigurationError, match="needs snapshots="):
                build()

    def test_runners_refuse_a_store_of_the_other_kind(self, memory_store: InMemoryEventStore) -> None:
        """Projection or OutboxDispatcher on an async store, AsyncOutboxDispatcher on a sync one: refused when built."""
        async_store: Any = AsyncInMemoryEventStore()
        with pytest.raises(ConfigurationError, match="is an async event store"):
            Projection("p", print, InMemoryCheckpointStore(), async_store)
        with pytest.raises(ConfigurationError, match="use AsyncOutboxDispatcher"):
            OutboxDispatcher(async_store, print)
        with pytest.raises(ConfigurationError, match="use OutboxDispatcher"):
            AsyncOutboxDispatcher(memory_store, print)  # type: ignore[arg-type]
