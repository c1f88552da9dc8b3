"""The bank account's rules, unit-tested on the in-memory store (no DynamoDB needed)."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from domain import AccountOpened, BankAccount, InsufficientFundsError, MoneyDeposited, MoneyWithdrawn

from dynamo_es import ConcurrencyError, InMemoryEventStore, Repository


@pytest.fixture
def accounts() -> Repository[BankAccount]:
    return Repository(BankAccount, InMemoryEventStore())


def test_opening_and_depositing_records_events() -> None:
    """Commands record the events that describe them."""
    account = BankAccount.open("a", owner="Ada")
    account.deposit(Decimal(10))
    assert [e.event for e in account.uncommitted_events] == [AccountOpened("Ada"), MoneyDeposited(Decimal(10))]
    assert account.balance == Decimal(10)


def test_overdraft_is_refused_and_records_nothing(accounts: Repository[BankAccount]) -> None:
    """A withdrawal above the balance raises and leaves no event behind."""
    account = BankAccount.open("a", owner="Ada")
    account.deposit(Decimal(10))
    accounts.save(account)
    with pytest.raises(InsufficientFundsError):
        account.withdraw(Decimal(11))
    assert account.uncommitted_events == ()
    assert accounts.get("a").balance == Decimal(10)


def test_state_survives_a_round_trip(accounts: Repository[BankAccount]) -> None:
    """What is saved loads back with the same balance and version."""
    account = BankAccount.open("a", owner="Ada")
    account.deposit(Decimal("12.50"))
    account.withdraw(Decimal("2.25"))
    accounts.save(account)
    loaded = accounts.get("a")
    assert (loaded.owner, loaded.balance, loaded.version) == ("Ada", Decimal("10.25"), 3)


def test_concurrent_tellers_one_conflicts(accounts: Repository[BankAccount]) -> None:
    """Two copies of one account: the second save raises ConcurrencyError."""
    accounts.save(BankAccount.open("a", owner="Ada"))
    first, second = accounts.get("a"), accounts.get("a")
    first.deposit(Decimal(1))
    second.deposit(Decimal(2))
    accounts.save(first)
    with pytest.raises(ConcurrencyError):
        accounts.save(second)
    assert [e.event for e in accounts.store.load("a", "BankAccount")][1:] == [MoneyDeposited(Decimal(1))]


def test_withdrawal_lowers_the_balance(accounts: Repository[BankAccount]) -> None:
    """A covered withdrawal records MoneyWithdrawn and lowers the balance."""
    account = BankAccount.open("a", owner="Ada")
    account.deposit(Decimal(10))
    account.withdraw(Decimal(4))
    assert account.uncommitted_events[-1].event == MoneyWithdrawn(Decimal(4))
    assert account.balance == Decimal(6)
