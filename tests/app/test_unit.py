"""UnitOfWork: several aggregates saved in one transaction, all or nothing, on every store."""

from __future__ import annotations

import uuid

import pytest

from dynamo_es import (
    AggregateNotFoundError,
    ConcurrencyError,
    DynamoDBEventStore,
    InMemoryEventStore,
    Repository,
    Tracking,
    UnitOfWork,
)
from dynamo_es.exceptions import Conflict, InvalidStreamError, TransactionTooLargeError

from ..conftest import Account

Store = InMemoryEventStore | DynamoDBEventStore


def opened(store: Store, count: int, *, balance: int = 100) -> list[str]:
    """``count`` new accounts with ``balance``, saved one by one; their ids."""
    ids = [f"acc-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    for account_id in ids:
        Repository(Account, store).save(Account.open(account_id, balance=balance))
    return ids


class TestCommit:
    def test_a_transfer_between_two_accounts_is_saved_together(self, any_store: Store) -> None:
        """Debit and credit are committed in one step; both aggregates are then at their new versions."""
        alice, bob = opened(any_store, 2)
        unit = UnitOfWork(any_store)
        unit.get(Account, alice).debit(30)
        unit.get(Account, bob).credit(30)
        result = unit.commit()
        assert [r.new_version for r in result.results] == [3, 3]
        accounts = Repository(Account, any_store)
        assert (accounts.get(alice).balance, accounts.get(bob).balance) == (70, 130)
        assert unit.pending == []

    def test_many_aggregates_are_all_or_nothing(self, any_store: Store) -> None:
        """Thirty accounts changed in one unit: a conflict on the last one leaves all thirty as they were."""
        ids = opened(any_store, 30)
        unit = UnitOfWork(any_store)
        for account_id in ids:
            unit.get(Account, account_id).credit(1)
        stale = Repository(Account, any_store).get(ids[-1])
        stale.credit(5)
        Repository(Account, any_store).save(stale)
        with pytest.raises(ConcurrencyError) as raised:
            unit.commit()
        assert raised.value.conflicts == (Conflict(f"TestAccount:{ids[-1]}", 2, 3),)
        assert [any_store.stream_version(i, "TestAccount") for i in ids[:-1]] == [2] * 29
        assert len(unit.pending) == 30  # nothing was marked committed

    def test_new_and_loaded_aggregates_of_different_types_go_together(self, any_store: Store) -> None:
        """A new aggregate added to the unit is saved with a loaded one."""
        (alice,) = opened(any_store, 1)
        unit = UnitOfWork(any_store)
        unit.get(Account, alice).debit(10)
        fresh = Account.open(f"new-{uuid.uuid4().hex[:8]}", balance=10)
        unit.add(fresh).commit()
        assert Repository(Account, any_store).get(fresh.id).balance == 10
        assert any_store.stream_version(alice, "TestAccount") == 3

    def test_more_than_one_transaction_holds_is_refused_and_nothing_is_written(self, any_store: Store) -> None:
        """101 events over two aggregates raise TransactionTooLargeError; both keep their uncommitted events."""
        alice, bob = opened(any_store, 2)
        unit = UnitOfWork(any_store)
        for _ in range(60):
            unit.get(Account, alice).credit(1)
        for _ in range(41):
            unit.get(Account, bob).credit(1)
        with pytest.raises(TransactionTooLargeError, match="101 items"):
            unit.commit()
        assert any_store.stream_version(alice, "TestAccount") == any_store.stream_version(bob, "TestAccount") == 2
        assert len(unit.pending) == 2

    def test_a_unit_commits_again_after_a_conflict_is_resolved_by_reloading(self, any_store: Store) -> None:
        """After a conflict, a fresh unit on reloaded aggregates commits."""
        alice, bob = opened(any_store, 2)
        first, second = UnitOfWork(any_store), UnitOfWork(any_store)
        for unit in (first, second):
            unit.get(Account, alice).debit(50)
            unit.get(Account, bob).credit(50)
        first.commit()
        with pytest.raises(ConcurrencyError):
            second.commit()
        retry = UnitOfWork(any_store)
        retry.get(Account, alice).debit(50)
        retry.get(Account, bob).credit(50)
        retry.commit()
        assert Repository(Account, any_store).get(alice).balance == 0


class TestTracking:
    def test_an_already_processed_commit_leaves_the_aggregates_uncommitted(self, any_store: Store) -> None:
        """A redelivered tracking writes nothing; the unit's aggregates keep their events."""
        (alice,) = opened(any_store, 1)
        tracking = Tracking("unit-tests", f"Upstream:{uuid.uuid4()}", 1)
        done = UnitOfWork(any_store)
        done.get(Account, alice).credit(5)
        assert not done.commit(tracking=tracking).already_processed
        again = UnitOfWork(any_store)
        again.get(Account, alice).credit(5)
        assert again.commit(tracking=tracking).already_processed
        assert len(again.pending) == 1 and Repository(Account, any_store).get(alice).balance == 105


class TestMembership:
    def test_get_returns_the_same_object_within_a_unit(self) -> None:
        """Loading one aggregate twice in a unit gives the object already in it."""
        store = InMemoryEventStore()
        (alice,) = opened(store, 1)
        unit = UnitOfWork(store)
        assert unit.get(Account, alice) is unit.get(Account, alice)

    def test_a_missing_aggregate_is_not_found(self) -> None:
        """get() of an aggregate with no events raises AggregateNotFoundError."""
        with pytest.raises(AggregateNotFoundError):
            UnitOfWork(InMemoryEventStore()).get(Account, "nobody")

    def test_two_objects_of_one_stream_are_refused(self) -> None:
        """Adding a second object for a stream already in the unit raises InvalidStreamError."""
        store = InMemoryEventStore()
        (alice,) = opened(store, 1)
        unit = UnitOfWork(store)
        unit.get(Account, alice)
        with pytest.raises(InvalidStreamError, match="already in this unit"):
            unit.add(Repository(Account, store).get(alice))

    def test_one_stream_under_two_classes_is_refused(self) -> None:
        """get() of a stream already in the unit as another class raises instead of dropping its events."""

        class OtherAccount(Account, aggregate_type="TestAccount"):
            pass

        store = InMemoryEventStore()
        (alice,) = opened(store, 1)
        unit = UnitOfWork(store)
        unit.get(Account, alice).credit(1)
        with pytest.raises(InvalidStreamError, match="as a Account"):
            unit.get(OtherAccount, alice)
        assert len(unit.pending) == 1

    def test_an_empty_unit_commits_nothing(self) -> None:
        """A unit without changes commits successfully and writes nothing."""
        store = InMemoryEventStore()
        (alice,) = opened(store, 1)
        unit = UnitOfWork(store)
        unit.get(Account, alice)
        assert unit.commit().results == () and store.stream_version(alice, "TestAccount") == 2
