"""Money transfers: two accounts in one transaction, a process manager that acts once, an exactly-once read model.

1. A transfer withdraws from one account and deposits to another with a ``UnitOfWork``: one
   DynamoDB transaction, each account with its own concurrency check. All or nothing.
2. A process manager pays a welcome bonus for every deposit of 100 or more, from the bank's
   promotions account. Each bonus is committed with a tracking record of the deposit it
   answers, so delivering every event again pays nothing twice.
3. A read model of balances in a DynamoDB table of its own: the handler returns its writes,
   and they are committed with the checkpoint, so a redelivery changes nothing.

Runs on the in-memory store, then on DynamoDB Local (started here unless DYNAMO_ES_ENDPOINT_URL is set).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

sys.path.insert(0, str(Path(__file__).parent / "bank_account"))

from domain import BankAccount, MoneyDeposited, MoneyWithdrawn

from dynamo_es import (
    Change,
    ConcurrencyError,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryEventStore,
    Projection,
    Repository,
    UnitOfWork,
    process_manager,
)
from dynamo_es.dynamodb import UpdateItem, table_meta
from dynamo_es.projections import TrackingStore
from dynamo_es.testing import configured_or_local


def transfer(store: TrackingStore, source: str, target: str, amount: Decimal) -> None:
    """Move ``amount`` from ``source`` to ``target``: both accounts change in one transaction."""
    unit = UnitOfWork(store)
    unit.get(BankAccount, source).withdraw(amount)
    unit.get(BankAccount, target).deposit(amount)
    unit.commit()


def welcome_bonus(change: Change, unit: UnitOfWork) -> None:
    """The process manager's policy: a deposit of 100 or more earns 5 from the promotions account."""
    deposit = change.event.event
    if isinstance(deposit, MoneyDeposited) and deposit.amount >= 100 and change.event.aggregate_id != "promotions":
        unit.get(BankAccount, "promotions").withdraw(Decimal(5))
        unit.get(BankAccount, change.event.aggregate_id).deposit(Decimal(5))


def open_accounts(store: TrackingStore) -> None:
    accounts = Repository(BankAccount, store)
    for account_id, opening in {"promotions": "1000", "alice": "200", "bob": "0"}.items():
        account = BankAccount.open(account_id, owner=account_id.title())
        if Decimal(opening):
            account.deposit(Decimal(opening))
        accounts.save(account)


def balances(store: TrackingStore) -> dict[str, str]:
    accounts = Repository(BankAccount, store)
    return {name: str(accounts.get(name).balance) for name in ("alice", "bob", "promotions")}


def run_on(store: TrackingStore, label: str) -> None:
    open_accounts(store)
    transfer(store, "alice", "bob", Decimal(150))
    print(f"{label}: after the transfer {balances(store)}")

    late = UnitOfWork(store)  # loaded before the next transfer commits...
    late.get(BankAccount, "alice").withdraw(Decimal(10))
    late.get(BankAccount, "bob").deposit(Decimal(10))
    transfer(store, "alice", "bob", Decimal(20))
    try:
        late.commit()  # ...so its expected version of alice is stale: nothing of it is written
    except ConcurrencyError as error:
        print(f"{label}: refused, {error}")

    bonuses = process_manager("welcome-bonus", welcome_bonus, store)
    bonuses.run(stop_when_idle=True)
    print(f"{label}: after the bonuses {balances(store)}")
    again = process_manager("welcome-bonus", welcome_bonus, store).rebuild(follow=False)  # every event, again
    print(f"{label}: everything delivered again, {again.applied} applied, {balances(store)}")


def balance_model(settings: EventStoreSettings) -> type[Model]:
    """The read model's table, on the same endpoint and credentials as the events."""

    class Balance(Model):
        Meta = table_meta(settings, f"{settings.events_table_name}-balances")
        account_id = UnicodeAttribute(hash_key=True)
        cents = NumberAttribute(default=0)

    Balance.create_table(wait=True)
    return Balance


def read_model(store: DynamoDBEventStore) -> None:
    balance = balance_model(store.settings)

    def writes(change: Change) -> Any:
        """The handler returns its write; the projection commits it with the checkpoint."""
        event = change.event.event
        delta = event.amount if isinstance(event, MoneyDeposited) else 0
        delta -= event.amount if isinstance(event, MoneyWithdrawn) else 0
        return UpdateItem(balance(change.event.aggregate_id), [balance.cents.add(int(delta * 100))])

    checkpoints = DynamoDBCheckpointStore(store.settings)
    for attempt in ("first run", "redelivered"):
        view = Projection("balances-table", writes, checkpoints, store, effects=checkpoints)
        applied = view.rebuild(follow=False).applied
        table = {item.account_id: str(Decimal(item.cents) / 100) for item in balance.scan(consistent_read=True)}
        print(f"read model, {attempt}: {applied} applied, {dict(sorted(table.items()))}")


def main() -> None:
    run_on(InMemoryEventStore(), "memory")
    with configured_or_local(
        events_table_name="TransferEvents", checkpoints_table_name="TransferCheckpoints"
    ) as settings:
        store = DynamoDBEventStore(settings)
        run_on(store, "dynamodb")
        read_model(store)


if __name__ == "__main__":
    main()
