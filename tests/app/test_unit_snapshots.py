"""Units of work and process managers read from snapshots and take them, as Repository does."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from dynamo_es import (
    Change,
    DynamoDBEventStore,
    DynamoDBSnapshotStore,
    EveryNEvents,
    InMemoryEventStore,
    InMemorySnapshotStore,
    Repository,
    Snapshot,
    SnapshotStore,
    UnitOfWork,
    process_manager,
)
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncUnitOfWork, async_process_manager
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore, AsyncDynamoDBSnapshotStore

from ..conftest import Account

Store = InMemoryEventStore | DynamoDBEventStore


class LoadRecorder:
    """A real store, with the ``from_version`` of each load (or history) of ``aggregate_id`` noted (sync or async)."""

    def __init__(self, store: Any, aggregate_id: str) -> None:
        self._store, self._aggregate_id = store, aggregate_id
        self.from_versions: list[int] = []
        self.load = self._noted(store.load)
        self.load_history = self._noted(store.load_history)

    def _noted(self, read: Any) -> Any:
        def noted(aggregate_id: str, aggregate_type: str, **options: Any) -> Any:
            self._note(aggregate_id, options)
            return read(aggregate_id, aggregate_type, **options)

        async def async_noted(aggregate_id: str, aggregate_type: str, **options: Any) -> Any:
            self._note(aggregate_id, options)
            return await read(aggregate_id, aggregate_type, **options)

        return async_noted if asyncio.iscoroutinefunction(read) else noted

    def _note(self, aggregate_id: str, options: dict[str, Any]) -> None:
        if aggregate_id == self._aggregate_id:
            self.from_versions.append(options.get("from_version", 1))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class AsyncSnapshots:
    """InMemorySnapshotStore with awaitable methods (dynamo-es has no async in-memory snapshot store)."""

    def __init__(self, snapshots: InMemorySnapshotStore) -> None:
        self.snapshots = snapshots

    async def load_latest(self, aggregate_type: str, aggregate_id: str, *, max_version: int | None = None) -> Any:
        return self.snapshots.load_latest(aggregate_type, aggregate_id, max_version=max_version)

    async def save(self, snapshot: Snapshot) -> None:
        self.snapshots.save(snapshot)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.ddblocal)])
def stores(request: pytest.FixtureRequest) -> tuple[Store, SnapshotStore]:
    if request.param == "memory":
        return InMemoryEventStore(), InMemorySnapshotStore()
    settings = request.getfixturevalue("events_table")
    return DynamoDBEventStore(settings), DynamoDBSnapshotStore(settings)


def account_at(store: Store, version: int) -> str:
    """A new account saved at ``version`` (opened, then credited 1 per version); its id."""
    account = Account.open(f"acc-{uuid.uuid4().hex[:10]}")
    for _ in range(version - 1):
        account.credit(1)
    Repository(Account, store).save(account)
    return account.id


def latest(snapshots: SnapshotStore, account_id: str) -> int | None:
    snapshot = snapshots.load_latest("TestAccount", account_id)
    return None if snapshot is None else snapshot.version


class TestUnitOfWork:
    def test_a_commit_that_crosses_the_strategy_snapshots_that_aggregate(self, stores: tuple[Store, Any]) -> None:
        """EveryNEvents(5): the aggregate that reaches version 5 is snapshotted; the one at 3 is not."""
        store, snapshots = stores
        first, second = account_at(store, 2), account_at(store, 2)
        unit = UnitOfWork(store, snapshots=snapshots, snapshot_strategy=EveryNEvents(5))
        for _ in range(3):
            unit.get(Account, first).credit(1)
        unit.get(Account, second).credit(1)
        unit.commit()
        assert (latest(snapshots, first), latest(snapshots, second)) == (5, None)

    def test_get_replays_only_the_events_after_the_latest_snapshot(self, stores: tuple[Store, Any]) -> None:
        """A unit with snapshots loads from version 6 after a snapshot at 5; the state equals a full replay."""
        store, snapshots = stores
        account_id = account_at(store, 5)
        Repository(Account, store, snapshots=snapshots).take_snapshot(Repository(Account, store).get(account_id))
        unit = UnitOfWork(store)
        unit.get(Account, account_id).credit(10)
        unit.commit()
        recorder = LoadRecorder(store, account_id)
        loaded = UnitOfWork(recorder, snapshots=snapshots).get(Account, account_id)  # type: ignore[arg-type]
        full = Repository(Account, store).get(account_id)
        assert recorder.from_versions == [6]
        assert (loaded.version, loaded.balance) == (full.version, full.balance) == (6, 14)

    def test_run_passes_the_snapshot_options_to_each_unit(self, stores: tuple[Store, Any]) -> None:
        """UnitOfWork.run(..., snapshots=, snapshot_strategy=) snapshots what its commit crosses."""
        store, snapshots = stores
        account_id = account_at(store, 4)
        UnitOfWork.run(
            store,
            lambda unit: unit.get(Account, account_id).credit(1),
            snapshots=snapshots,
            snapshot_strategy=EveryNEvents(5),
        )
        assert latest(snapshots, account_id) == 5


def stock_policy(stock_id: str) -> Any:
    """A policy that credits one shared (hot) account for every upstream event."""

    def react(change: Change, unit: Any) -> Any:
        unit.get(Account, stock_id).credit(1, reason=change.event.event_id)

    return react


def async_stock_policy(stock_id: str) -> Any:
    """`stock_policy` for an async unit of work."""

    async def react(change: Change, unit: AsyncUnitOfWork) -> None:
        (await unit.get(Account, stock_id)).credit(1, reason=change.event.event_id)

    return react


class TestProcessManager:
    def test_its_hot_aggregate_is_read_from_and_saved_to_snapshots(self, stores: tuple[Store, Any]) -> None:
        """Six reactions on one account with EveryNEvents(3): snapshots at 3 and 6, each load after one starts there."""
        store, snapshots = stores
        stock_id, upstream_id = account_at(store, 1), account_at(store, 6)
        recorder = LoadRecorder(store, stock_id)
        manager = process_manager(
            f"stock-{uuid.uuid4().hex[:8]}",
            stock_policy(stock_id),
            recorder,  # type: ignore[arg-type]
            snapshots=snapshots,
            snapshot_strategy=EveryNEvents(3),
        )
        outcome = manager.handle([Change.stored(e) for e in store.load(upstream_id, "TestAccount")])
        assert outcome.applied == 6 and not outcome.failed
        earlier = snapshots.load_latest("TestAccount", stock_id, max_version=5)
        assert latest(snapshots, stock_id) == 6 and earlier is not None and earlier.version == 3
        assert recorder.from_versions == [1, 1, 4, 4, 4, 7]
        assert Repository(Account, store, snapshots=snapshots).get(stock_id).balance == 6


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.ddblocal)])
def async_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestAsync:
    def run(self, kind: str, request: pytest.FixtureRequest, scenario: Any) -> Any:
        """``scenario(sync_store, async_store, async_snapshots, sync_snapshots)`` on memory or DynamoDB Local."""

        async def main() -> Any:
            if kind == "memory":
                sync, memory_snapshots = InMemoryEventStore(), InMemorySnapshotStore()
                return await scenario(
                    sync, AsyncInMemoryEventStore(sync), AsyncSnapshots(memory_snapshots), memory_snapshots
                )
            settings = request.getfixturevalue("events_table")
            async with AsyncDynamoDBEventStore(settings) as store, AsyncDynamoDBSnapshotStore(settings) as snapshots:
                return await scenario(DynamoDBEventStore(settings), store, snapshots, DynamoDBSnapshotStore(settings))

        return asyncio.run(main())

    def test_an_async_unit_snapshots_and_reads_from_snapshots(
        self, async_kind: str, request: pytest.FixtureRequest
    ) -> None:
        """AsyncUnitOfWork: a commit reaching version 5 snapshots; a later unit loads from version 6."""

        async def scenario(sync: Store, store: Any, snapshots: Any, sync_snapshots: SnapshotStore) -> tuple[Any, ...]:
            account_id = account_at(sync, 3)
            unit = AsyncUnitOfWork(store, snapshots=snapshots, snapshot_strategy=EveryNEvents(5))
            account = await unit.get(Account, account_id)
            account.credit(1)
            account.credit(1)
            await unit.commit()
            recorder = LoadRecorder(store, account_id)
            loaded = await AsyncUnitOfWork(recorder, snapshots=snapshots).get(Account, account_id)  # type: ignore[arg-type]
            return latest(sync_snapshots, account_id), recorder.from_versions, loaded.balance

        assert self.run(async_kind, request, scenario) == (5, [6], 4)

    def test_an_async_process_manager_snapshots_its_hot_aggregate(
        self, async_kind: str, request: pytest.FixtureRequest
    ) -> None:
        """async_process_manager(..., snapshots=, snapshot_strategy=) snapshots what its reactions change."""

        async def scenario(sync: Store, store: Any, snapshots: Any, sync_snapshots: SnapshotStore) -> tuple[Any, ...]:
            stock_id, upstream_id = account_at(sync, 1), account_at(sync, 4)
            name = f"stock-{uuid.uuid4().hex[:8]}"
            manager = async_process_manager(
                name, async_stock_policy(stock_id), store, snapshots=snapshots, snapshot_strategy=EveryNEvents(2)
            )
            outcome = await manager.handle([Change.stored(e) for e in sync.load(upstream_id, "TestAccount")])
            return outcome.applied, latest(sync_snapshots, stock_id)

        assert self.run(async_kind, request, scenario) == (4, 4)
