"""A bank account: the events, and the aggregate that records and applies them."""

from __future__ import annotations

from decimal import Decimal

import attrs

from dynamo_es import AggregateRoot, applies, event


@event(name="bank.AccountOpened")
@attrs.frozen
class AccountOpened:
    owner: str


@event(name="bank.MoneyDeposited")
@attrs.frozen
class MoneyDeposited:
    amount: Decimal


@event(name="bank.MoneyWithdrawn")
@attrs.frozen
class MoneyWithdrawn:
    amount: Decimal


class InsufficientFundsError(Exception):
    """A withdrawal larger than the balance."""


class BankAccount(AggregateRoot):
    """An account that refuses overdrafts."""

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.owner = ""
        self.balance = Decimal(0)

    @classmethod
    def open(cls, account_id: str, owner: str) -> BankAccount:
        account = cls(account_id)
        account.record(AccountOpened(owner))
        return account

    def deposit(self, amount: Decimal) -> None:
        if amount <= 0:
            raise ValueError("deposit a positive amount")
        self.record(MoneyDeposited(amount))

    def withdraw(self, amount: Decimal) -> None:
        if amount <= 0:
            raise ValueError("withdraw a positive amount")
        if amount > self.balance:
            raise InsufficientFundsError(f"balance {self.balance} is less than {amount}")
        self.record(MoneyWithdrawn(amount))

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner = event.owner

    @applies(MoneyDeposited)
    def _deposited(self, event: MoneyDeposited) -> None:
        self.balance += event.amount

    @applies(MoneyWithdrawn)
    def _withdrawn(self, event: MoneyWithdrawn) -> None:
        self.balance -= event.amount
