"""An AWS Lambda function that keeps a read model of account balances in a DynamoDB table.

Deployed with ``template.yaml`` beside it: the events table's stream feeds this function through
an event source mapping with ReportBatchItemFailures. Run as a script, it plays one invocation
against DynamoDB Local: records read from the stream, wrapped as Lambda delivers them.
"""

from __future__ import annotations

import functools
import os
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "bank_account"))

from domain import BankAccount, MoneyDeposited, MoneyWithdrawn
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    Projection,
    Repository,
    handles,
)
from dynamo_es.dynamodb import lambda_handler, table_meta
from dynamo_es.testing import configured_or_local, lambda_payload


def balance_model(settings: EventStoreSettings, table_name: str) -> type[Model]:
    """The read model's item: one row per account in the balances table."""

    class Balance(Model):
        Meta = table_meta(settings, table_name)
        account = UnicodeAttribute(hash_key=True)
        cents = NumberAttribute(default=0)

    return Balance


class Balances:
    """The read model: it reads deposits and withdrawals (nothing else in the table is decoded)."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model

    @handles(MoneyDeposited)
    def deposited(self, change: Change) -> None:
        self._add(change.event.aggregate_id, change.event.event.amount)

    @handles(MoneyWithdrawn)
    def withdrawn(self, change: Change) -> None:
        self._add(change.event.aggregate_id, -change.event.event.amount)

    def _add(self, account: str, delta: Decimal) -> None:
        row = self.model(account)
        row.update(actions=[self.model.cents.add(int(delta * 100))])


def build_projection(settings: EventStoreSettings, balances_table: str) -> Projection:
    """The projection: each deposit or withdrawal updates the account's row in the balances table."""
    store = DynamoDBEventStore(settings)
    read_model = Balances(balance_model(settings, balances_table))
    return Projection("balances", read_model, DynamoDBCheckpointStore(settings), store, max_attempts=5)


def projection() -> Projection:
    """The deployed projection, configured from the environment (``dynamo-es project ... handler:projection``)."""
    return build_projection(EventStoreSettings.from_env(), os.environ["BALANCES_TABLE"])


@functools.cache
def _function() -> Any:
    """Built once per Lambda container, on the first invocation."""
    return lambda_handler(projection())


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point (``Handler: handler.handler`` in template.yaml)."""
    response: dict[str, Any] = _function()(event, context)
    return response


def main() -> None:
    with configured_or_local(events_table_name="LambdaEvents") as settings:
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        balances_table = f"balances-{uuid.uuid4().hex[:8]}"
        balance_model(settings, balances_table).create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        accounts = Repository(BankAccount, store)
        account = BankAccount.open(f"acc-{uuid.uuid4().hex[:6]}", owner="Ada")
        account.deposit(Decimal("100"))
        account.withdraw(Decimal("30"))
        accounts.save(account)

        invoke = lambda_handler(build_projection(settings, balances_table))
        event = lambda_payload(store.load(account.id, "BankAccount"), settings=settings)  # as the stream delivers them
        print(f"first delivery: {invoke(event, None)}")
        print(f"redelivered: {invoke(event, None)}")
        row = balance_model(settings, balances_table).get(account.id, consistent_read=True)
        print(f"balance in the read model: {Decimal(row.cents) / 100}")


if __name__ == "__main__":
    main()
