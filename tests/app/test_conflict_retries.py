"""Repository.update and UnitOfWork.run: a command that meets a conflict runs again on fresh state."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest

from dynamo_es import ConcurrencyError, DynamoDBEventStore, InMemoryEventStore, Repository, UnitOfWork
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncRepository, AsyncUnitOfWork
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.exceptions import AggregateNotFoundError, ConfigurationError

from ..conftest import Account

Store = InMemoryEventStore | DynamoDBEventStore


def opened(store: Store, balance: int = 10) -> str:
    account = Account.open(f"acc-{uuid.uuid4().hex[:10]}", balance=balance)
    Repository(Account, store).save(account)
    return account.id


class Rival:
    """Another writer: the first ``times`` runs of a command, it credits the account first (a real conflict)."""

    def __init__(self, store: Store, account_id: str, times: int = 1) -> None:
        self.store, self.account_id, self.left, self.runs = store, account_id, times, 0

    def strike(self) -> None:
        self.runs += 1
        if self.left:
            self.left -= 1
            rival = Repository(Account, self.store).get(self.account_id)
            rival.credit(100, "rival")
            Repository(Account, self.store).save(rival)


class TestRepositoryUpdate:
    def test_a_conflicted_command_runs_again_on_the_fresh_aggregate(
        self, any_store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The rival saves between load and save; the command runs again on the aggregate with the rival's credit."""
        account_id = opened(any_store)
        rival = Rival(any_store, account_id)

        def withdraw(account: Account) -> None:
            account.debit(5)
            rival.strike()

        with caplog.at_level(logging.INFO, logger="dynamo_es"):
            saved = Repository(Account, any_store).update(account_id, withdraw)
        assert rival.runs == 2 and saved.balance == 105 and saved.version == 4
        assert Repository(Account, any_store).get(account_id).balance == 105
        assert "running the command again" in caplog.text

    def test_the_last_attempt_conflicting_raises(self, any_store: Store) -> None:
        """With attempts=2 and a rival both times, ConcurrencyError reaches the caller; the rival's events stay."""
        account_id = opened(any_store)
        rival = Rival(any_store, account_id, times=2)
        with pytest.raises(ConcurrencyError):
            Repository(Account, any_store).update(account_id, lambda a: (rival.strike(), a.credit(1)), attempts=2)
        assert rival.runs == 2 and Repository(Account, any_store).get(account_id).balance == 210

    def test_a_command_error_is_not_retried(self, memory_store: InMemoryEventStore) -> None:
        """The command's own error (a broken rule) is raised at once, nothing saved."""
        account_id = opened(memory_store)
        with pytest.raises(ValueError, match="balance 10 is less than 99"):
            Repository(Account, memory_store).update(account_id, lambda account: account.debit(99))
        assert memory_store.stream_version(account_id, "TestAccount") == 2

    def test_a_missing_aggregate_is_not_found(self, memory_store: InMemoryEventStore) -> None:
        """update() of an aggregate with no events raises AggregateNotFoundError."""
        with pytest.raises(AggregateNotFoundError):
            Repository(Account, memory_store).update("nobody", lambda account: account.credit(1))

    @pytest.mark.parametrize("attempts", [0, -1, True, 1.5])
    def test_attempts_must_be_a_positive_integer(self, memory_store: InMemoryEventStore, attempts: Any) -> None:
        """attempts=0 (or another non-positive or non-integer value) is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="attempts"):
            Repository(Account, memory_store).update("a", lambda account: None, attempts=attempts)


class TestUnitOfWorkRun:
    def test_a_conflicted_unit_runs_again_with_fresh_aggregates(self, any_store: Store) -> None:
        """A transfer whose source a rival changed first runs again; both accounts end right; run returns its result."""
        source, target = opened(any_store), opened(any_store)
        rival = Rival(any_store, source)

        def transfer(unit: UnitOfWork) -> int:
            unit.get(Account, source).debit(5)
            unit.get(Account, target).credit(5)
            rival.strike()
            return rival.runs

        assert UnitOfWork.run(any_store, transfer) == 2
        balances = [Repository(Account, any_store).get(i).balance for i in (source, target)]
        assert balances == [105, 15]

    def test_the_last_attempt_conflicting_raises(self, any_store: Store) -> None:
        """attempts=1: the first conflict is raised, nothing of the unit written."""
        source, target = opened(any_store), opened(any_store)
        rival = Rival(any_store, source)

        def transfer(unit: UnitOfWork) -> None:
            unit.get(Account, source).debit(5)
            unit.get(Account, target).credit(5)
            rival.strike()

        with pytest.raises(ConcurrencyError):
            UnitOfWork.run(any_store, transfer, attempts=1)
        assert Repository(Account, any_store).get(target).version == 2


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.ddblocal)])
def async_stores(request: pytest.FixtureRequest) -> Any:
    """A sync store (for the rival and checks) and an async factory on the same events."""
    if request.param == "memory":
        sync = InMemoryEventStore()
        return sync, lambda: _Opened(AsyncInMemoryEventStore(sync))
    settings = request.getfixturevalue("events_table")
    return DynamoDBEventStore(settings), lambda: AsyncDynamoDBEventStore(settings)


class _Opened:
    """An async context manager around a store that needs none."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def __aenter__(self) -> Any:
        return self.store

    async def __aexit__(self, *_: object) -> None:
        return None


class TestAsync:
    def test_async_update_runs_a_conflicted_command_again(self, async_stores: Any) -> None:
        """AsyncRepository.update: the same rule, the command awaited when it returns an awaitable."""
        sync, opened_async = async_stores
        account_id = opened(sync)
        rival = Rival(sync, account_id)

        async def withdraw(account: Account) -> None:
            account.debit(5)
            rival.strike()

        async def scenario() -> int:
            async with opened_async() as store:
                return (await AsyncRepository(Account, store).update(account_id, withdraw)).balance

        assert asyncio.run(scenario()) == 105 and rival.runs == 2

    def test_async_unit_run_runs_conflicted_work_again(self, async_stores: Any) -> None:
        """AsyncUnitOfWork.run: a conflicted transfer runs again and returns its result."""
        sync, opened_async = async_stores
        source, target = opened(sync), opened(sync)
        rival = Rival(sync, source)

        async def transfer(unit: AsyncUnitOfWork) -> str:
            (await unit.get(Account, source)).debit(5)
            (await unit.get(Account, target)).credit(5)
            rival.strike()
            return "moved"

        async def scenario() -> str:
            async with opened_async() as store:
                return await AsyncUnitOfWork.run(store, transfer)

        assert asyncio.run(scenario()) == "moved" and rival.runs == 2
        assert [Repository(Account, sync).get(i).balance for i in (source, target)] == [105, 15]


class TestMismatchedCallbacks:
    def test_a_sync_runner_refuses_an_async_command(self, memory_store: InMemoryEventStore) -> None:
        """update()/run() given an async function raise ConfigurationError instead of dropping it unawaited."""
        account_id = opened(memory_store)

        async def deposit(account: Account) -> None:
            account.credit(1)

        async def work(unit: UnitOfWork) -> None:
            unit.get(Account, account_id).credit(1)

        with pytest.raises(ConfigurationError, match="an async function was given to a sync runner"):
            Repository(Account, memory_store).update(account_id, deposit)
        with pytest.raises(ConfigurationError, match="an async function was given to a sync runner"):
            UnitOfWork.run(memory_store, work)  # type: ignore[arg-type]
        assert memory_store.stream_version(account_id, "TestAccount") == 2

    def test_the_async_unit_runs_a_plain_function_too(self, memory_store: InMemoryEventStore) -> None:
        """AsyncUnitOfWork.run(store, plain_function) works like AsyncRepository.update does."""
        account_id = opened(memory_store)
        store = AsyncInMemoryEventStore(memory_store)

        async def scenario() -> str:
            source = await AsyncRepository(Account, store).get(account_id)

            def work(unit: AsyncUnitOfWork) -> str:
                unit.add(source)
                source.credit(3)
                return "plain"

            return await AsyncUnitOfWork.run(store, work)  # type: ignore[arg-type]

        assert asyncio.run(scenario()) == "plain"
        assert Repository(Account, memory_store).get(account_id).balance == 13
