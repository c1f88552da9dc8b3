"""An asyncio service: concurrent deposit and transfer commands against DynamoDB, none blocking the loop.

Fifty deposits to five accounts run at once: each command loads its account, records the
deposit and saves; when another command saved the same account first (ConcurrencyError), it
reloads and tries again, as a command handler should. Then transfers move money between
accounts with an AsyncUnitOfWork (both accounts in one transaction). Meanwhile a read model of
the balances follows the table's stream in a task of its own (an AsyncProjection over an
AsyncSubscription), on the same event loop. Runs on DynamoDB Local, which it starts itself (or on
DYNAMO_ES_ENDPOINT_URL when set).
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "bank_account"))

from domain import BankAccount, MoneyDeposited, MoneyWithdrawn

from dynamo_es import Change, EventStoreSettings
from dynamo_es.aio import AsyncProjection, AsyncRepository, AsyncUnitOfWork
from dynamo_es.dynamodb.aio import AsyncDynamoDBCheckpointStore, AsyncDynamoDBEventStore
from dynamo_es.testing import configured_or_local

ACCOUNTS = [f"async-{n}" for n in range(5)]


async def deposit(accounts: AsyncRepository[BankAccount], account_id: str, amount: Decimal) -> int:
    """The command handler: update() loads, decides, saves, and runs it again after a conflict. Returns the runs."""
    runs = 0

    def command(account: BankAccount) -> None:
        nonlocal runs
        runs += 1
        account.deposit(amount)

    await accounts.update(account_id, command, attempts=20)
    return runs


async def transfer(store: AsyncDynamoDBEventStore, source: str, target: str, amount: Decimal) -> None:
    """Both accounts change in one transaction; a conflict on either writes nothing, and run() goes again."""

    async def work(unit: AsyncUnitOfWork) -> None:
        (await unit.get(BankAccount, source)).withdraw(amount)
        (await unit.get(BankAccount, target)).deposit(amount)

    await AsyncUnitOfWork.run(store, work, attempts=20)


async def serve(store: AsyncDynamoDBEventStore) -> dict[str, str]:
    accounts = AsyncRepository(BankAccount, store)
    for account_id in ACCOUNTS:
        await accounts.save(BankAccount.open(account_id, owner=account_id))
    attempts = await asyncio.gather(
        *(deposit(accounts, ACCOUNTS[n % 5], Decimal(10)) for n in range(50))
    )  # fmt: skip
    balances = {a: str((await accounts.get(a)).balance) for a in ACCOUNTS}
    print(f"50 concurrent deposits: {balances}")
    print(f"conflicts retried: {sum(attempts) - len(attempts) > 0}")
    await asyncio.gather(*(transfer(store, ACCOUNTS[n], ACCOUNTS[(n + 1) % 5], Decimal(n + 1)) for n in range(5)))
    balances = {a: str((await accounts.get(a)).balance) for a in ACCOUNTS}
    print(f"after 5 concurrent transfers: {balances}, total {sum(map(Decimal, balances.values()))}")
    return balances


class Balances:
    """The read model: each account's balance, kept from the stream of changes."""

    def __init__(self) -> None:
        self.by_account: dict[str, Decimal] = {}

    async def apply(self, change: Change) -> None:
        event, account_id = change.event.event, change.event.aggregate_id
        if isinstance(event, MoneyDeposited | MoneyWithdrawn):
            sign = 1 if isinstance(event, MoneyDeposited) else -1
            self.by_account[account_id] = self.by_account.get(account_id, Decimal(0)) + sign * event.amount

    def as_text(self) -> dict[str, str]:
        return {account_id: str(balance) for account_id, balance in sorted(self.by_account.items())}

    async def caught_up(self, expected: dict[str, str]) -> None:
        while self.as_text() != expected:
            await asyncio.sleep(0.05)  # the stream delivers within a poll interval


async def run(settings: EventStoreSettings) -> None:
    async with (
        AsyncDynamoDBEventStore(settings) as store,
        AsyncDynamoDBCheckpointStore(settings) as checkpoints,
    ):
        await store.ensure_table()
        balances = Balances()
        read_model = AsyncProjection("balances", balances.apply, checkpoints, store)
        following = asyncio.create_task(read_model.run())  # the read side, a task on the same loop
        expected = await serve(store)
        await asyncio.wait_for(balances.caught_up(expected), timeout=30)
        read_model.stop()
        await following
        print(f"read model, from the stream: {balances.as_text()}")


def main() -> None:
    with configured_or_local(events_table_name="AsyncServiceEvents") as settings:
        asyncio.run(run(settings))


if __name__ == "__main__":
    main()
