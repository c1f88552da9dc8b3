"""A small wallet domain and helpers shared by the stream tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

import attrs
import pytest

from dynamo_es import AggregateRoot, Change, DynamoDBEventStore, EventStoreSettings, Repository, applies, event


@event(name="WalletOpened")
@attrs.frozen
class Opened:
    owner: str


@event(name="WalletDeposited")
@attrs.frozen
class Deposited:
    amount: int


@event(name="WalletWithdrawn")
@attrs.frozen
class Withdrawn:
    amount: int


class Wallet(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0

    @classmethod
    def open(cls, aggregate_id: str) -> Wallet:
        wallet = cls(aggregate_id)
        wallet.record(Opened("someone"))
        return wallet

    def deposit(self, amount: int) -> None:
        self.record(Deposited(amount))

    def withdraw(self, amount: int) -> None:
        self.record(Withdrawn(amount))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        pass

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount


def balance_delta(change: Change) -> int:
    """What a change does to a wallet's balance."""
    if isinstance(change.event.event, Deposited):
        return int(change.event.event.amount)
    if isinstance(change.event.event, Withdrawn):
        return -int(change.event.event.amount)
    return 0


def ours(changes: Iterable[Change], ids: Iterable[str]) -> list[Change]:
    """Only the changes of the given wallet ids (the table is shared by the stream tests)."""
    wanted = set(ids)
    return [c for c in changes if c.event.aggregate_id in wanted]


@pytest.fixture
def store(streams_table: EventStoreSettings) -> DynamoDBEventStore:
    return DynamoDBEventStore(attrs.evolve(streams_table, streams_poll_interval_ms=50))


@pytest.fixture
def wallets(store: DynamoDBEventStore) -> Repository[Wallet]:
    return Repository(Wallet, store)


@pytest.fixture
def make_wallets(wallets: Repository[Wallet]) -> Callable[..., list[str]]:
    """``make_wallets(n, deposits=k)``: n saved wallets with k deposits each, interleaved saves."""

    def make(count: int, *, deposits: int = 3) -> list[str]:
        ids = [f"w-{uuid.uuid4()}" for _ in range(count)]
        for wallet_id in ids:
            wallets.save(Wallet.open(wallet_id))
        for round_ in range(deposits):
            for wallet_id in ids:
                wallet = wallets.get(wallet_id)
                wallet.deposit(round_ + 1)
                wallets.save(wallet)
        return ids

    return make
