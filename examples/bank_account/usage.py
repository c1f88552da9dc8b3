"""Open an account, move money, and resolve a concurrent write by reloading and retrying.

Runs on DynamoDB Local, which it starts itself (or on DYNAMO_ES_ENDPOINT_URL when set).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from domain import BankAccount, InsufficientFundsError

from dynamo_es import ConcurrencyError, DynamoDBEventStore, Repository
from dynamo_es.testing import configured_or_local


def main() -> None:
    with configured_or_local(events_table_name="BankEvents") as settings:
        accounts = Repository(BankAccount, DynamoDBEventStore(settings))

        account = BankAccount.open("acc-42", owner="Ada")
        account.deposit(Decimal("100.00"))
        accounts.save(account)
        print(f"opened {account.id} for {account.owner}: balance {account.balance}, v{account.version}")

        try:
            account.withdraw(Decimal("500.00"))
        except InsufficientFundsError as refused:
            print(f"refused: {refused}")

        # Two tellers load the same account; both act; the second save conflicts.
        teller_a, teller_b = accounts.get("acc-42"), accounts.get("acc-42")
        teller_a.withdraw(Decimal("30.00"))
        teller_b.deposit(Decimal("5.00"))
        accounts.save(teller_a)
        try:
            accounts.save(teller_b)
        except ConcurrencyError as conflict:
            print(f"teller B lost the race: {conflict}")
            teller_b = accounts.get("acc-42")  # retry the command on fresh state
            teller_b.deposit(Decimal("5.00"))
            accounts.save(teller_b)
            print(f"teller B retried: balance {teller_b.balance}, v{teller_b.version}")

        final = accounts.get("acc-42")
        print(f"final balance {final.balance} at v{final.version}")
        print(f"as of v2: balance {accounts.get('acc-42', version=2).balance}")


if __name__ == "__main__":
    main()
