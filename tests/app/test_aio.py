"""The asyncio API on the in-memory store: repository and unit of work with the sync semantics."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from dynamo_es import ConcurrencyError, InMemoryEventStore
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncRepository, AsyncUnitOfWork
from dynamo_es.exceptions import (
    AggregateClassError,
    AggregateNotFoundError,
    ConfigurationError,
    TransactionTooLargeError,
)

from ..conftest import Account


def fresh_id() -> str:
    return f"acc-{uuid.uuid4().hex[:8]}"


class TestAsyncRepository:
    def test_save_and_get_round_trip(self) -> None:
        """An aggregate saved with await loads back at its version, with its state."""

        async def scenario() -> tuple[int, int, bool]:
            accounts = AsyncRepository(Account, AsyncInMemoryEventStore())
            account = Account.open(fresh_id(), balance=40)
            version = await accounts.save(account)
            loaded = await accounts.get(account.id)
            return version, loaded.balance, await accounts.exists(account.id)

        assert asyncio.run(scenario()) == (2, 40, True)

    def test_a_missing_aggregate_is_not_found(self) -> None:
        """get() of an empty stream raises AggregateNotFoundError."""
        with pytest.raises(AggregateNotFoundError):
            asyncio.run(AsyncRepository(Account, AsyncInMemoryEventStore()).get("nobody"))

    def test_concurrent_saves_of_one_version_have_one_winner(self) -> None:
        """Ten tasks save the same loaded version: one wins, nine get ConcurrencyError."""

        async def scenario() -> list[BaseException | int]:
            accounts = AsyncRepository(Account, AsyncInMemoryEventStore())
            account_id = fresh_id()
            await accounts.save(Account.open(account_id))
            copies = [await accounts.get(account_id) for _ in range(10)]
            for copy in copies:
                copy.credit(1)
            return await asyncio.gather(*(accounts.save(copy) for copy in copies), return_exceptions=True)

        outcomes = asyncio.run(scenario())
        assert outcomes.count(2) == 1 and sum(isinstance(o, ConcurrencyError) for o in outcomes) == 9


class TestAsyncUnitOfWork:
    def test_two_aggregates_commit_together(self) -> None:
        """A transfer through the async unit of work lands on both accounts."""

        async def scenario() -> tuple[int, int]:
            store = AsyncInMemoryEventStore()
            accounts = AsyncRepository(Account, store)
            alice, bob = Account.open(fresh_id(), balance=50), Account.open(fresh_id())
            await accounts.save(alice)
            await accounts.save(bob)
            unit = AsyncUnitOfWork(store)
            (await unit.get(Account, alice.id)).debit(20)
            (await unit.get(Account, bob.id)).credit(20)
            await unit.commit()
            return (await accounts.get(alice.id)).balance, (await accounts.get(bob.id)).balance

        assert asyncio.run(scenario()) == (30, 20)

    def test_too_much_for_one_transaction_is_refused(self) -> None:
        """101 events in one unit raise TransactionTooLargeError; nothing is written."""

        async def scenario() -> int:
            store = AsyncInMemoryEventStore()
            account = Account.open(fresh_id())
            for _ in range(100):
                account.credit(1)
            with pytest.raises(TransactionTooLargeError):
                await AsyncUnitOfWork(store).add(account).commit()
            return await store.stream_version(account.id, "TestAccount")

        assert asyncio.run(scenario()) == 0


class TestWrongStore:
    @pytest.mark.parametrize(
        "make", [lambda s: AsyncRepository(Account, s), AsyncUnitOfWork], ids=["repository", "unit"]
    )
    def test_a_sync_store_is_refused_at_once_naming_what_to_use(self, make: Any) -> None:
        """Given a sync store, the async repository and unit of work say so when built, not at the first await."""
        with pytest.raises(ConfigurationError, match=r"InMemoryEventStore is not an async event store.*AsyncInMemory"):
            make(InMemoryEventStore())


class TestAsyncGuardRails:
    def test_an_aggregate_of_another_class_is_refused(self) -> None:
        """AsyncRepository of one class refuses to save an aggregate of another, writing nothing."""

        class Other(Account, aggregate_type="OtherAccount"):
            pass

        store = AsyncInMemoryEventStore()
        with pytest.raises(AggregateClassError, match="OtherAccount:o-1"):
            asyncio.run(AsyncRepository(Account, store).save(Other.open("o-1")))
        assert asyncio.run(store.stream_version("o-1", "OtherAccount")) == 0
