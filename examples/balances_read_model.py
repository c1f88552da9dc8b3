"""A read model fed by the events table's DynamoDB stream: balance per account.

The projection keeps its position and per-account versions in a checkpoint table, so it can
stop and resume without losing or double-counting anything. Runs on DynamoDB Local, which it
starts itself (or on DYNAMO_ES_ENDPOINT_URL when set).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "bank_account"))

from domain import BankAccount, MoneyDeposited, MoneyWithdrawn

from dynamo_es import Change, DynamoDBCheckpointStore, DynamoDBEventStore, Projection, Repository
from dynamo_es.testing import configured_or_local


class BalancesView:
    """The read model: a dict a web page could serve. Its handler can be naive."""

    def __init__(self) -> None:
        self.balances: dict[str, Decimal] = {}

    def __call__(self, change: Change) -> None:
        account, event = change.event.aggregate_id, change.event.event
        if isinstance(event, MoneyDeposited):
            self.balances[account] = self.balances.get(account, Decimal(0)) + event.amount
        elif isinstance(event, MoneyWithdrawn):
            self.balances[account] = self.balances.get(account, Decimal(0)) - event.amount


def main() -> None:
    with configured_or_local(events_table_name="BalancesEvents") as settings:
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        accounts = Repository(BankAccount, store)
        view = BalancesView()
        checkpoints = DynamoDBCheckpointStore(settings)

        for account_id, amounts in {"alice": ["100", "-30"], "bob": ["50"]}.items():
            account = BankAccount.open(account_id, owner=account_id.title())
            for amount in map(Decimal, amounts):
                if amount > 0:
                    account.deposit(amount)
                else:
                    account.withdraw(-amount)
            accounts.save(account)

        handled = Projection("balances", view, checkpoints, store).run(stop_when_idle=True)
        print(f"first run: {handled} changes, balances {dict(sorted(view.balances.items()))}")

        bob = accounts.get("bob")
        bob.withdraw(Decimal("20"))
        accounts.save(bob)

        # A new Projection object (a restarted process) resumes from the saved checkpoint.
        handled = Projection("balances", view, checkpoints, store).run(stop_when_idle=True)
        print(f"resumed: {handled} new change(s), balances {dict(sorted(view.balances.items()))}")

        replayed = {account_id: accounts.get(account_id).balance for account_id in view.balances}
        print(f"equal to replay: {replayed == view.balances}")


if __name__ == "__main__":
    main()
