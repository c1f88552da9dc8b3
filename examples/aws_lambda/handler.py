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

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    Projection,
    Repository,
)
from dynamo_es.dynamodb import lambda_handler
from dynamo_es.testing import configured_or_local


def build_projection(settings: EventStoreSettings, balances_table: str) -> Projection:
    """The projection: each deposit or withdrawal updates the account's row in the balances table."""
    store = DynamoDBEventStore(settings)
    client = store.connection.client

    def apply(change: Change) -> None:
        event = change.event.event
        if isinstance(event, MoneyDeposited | MoneyWithdrawn):
            delta = event.amount if isinstance(event, MoneyDeposited) else -event.amount
            client.update_item(
                TableName=balances_table,
                Key={"account": {"S": change.event.aggregate_id}},
                UpdateExpression="ADD balance :delta",
                ExpressionAttributeValues={":delta": {"N": str(delta)}},
            )

    return Projection("balances", apply, DynamoDBCheckpointStore(settings), store, max_attempts=5)


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


def stream_as_lambda_event(store: DynamoDBEventStore) -> dict[str, Any]:
    """What Lambda would deliver: the stream's records in the Lambda envelope (epoch-second times)."""
    subscription = store.subscribe_to_changes().start()
    records = []
    for shard in subscription.client.describe_stream(StreamArn=subscription.stream_arn)["StreamDescription"]["Shards"]:
        iterator = subscription.client.get_shard_iterator(
            StreamArn=subscription.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        page = subscription.client.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            body = {**record["dynamodb"], "ApproximateCreationDateTime": 1714557600}
            records.append({**record, "eventSource": "aws:dynamodb", "dynamodb": body})
    return {"Records": records}


def main() -> None:
    with configured_or_local(events_table_name="LambdaEvents") as settings:
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        balances_table = f"balances-{uuid.uuid4().hex[:8]}"
        store.connection.client.create_table(
            TableName=balances_table,
            KeySchema=[{"AttributeName": "account", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "account", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        accounts = Repository(BankAccount, store)
        account = BankAccount.open(f"acc-{uuid.uuid4().hex[:6]}", owner="Ada")
        account.deposit(Decimal("100"))
        account.withdraw(Decimal("30"))
        accounts.save(account)

        invoke = lambda_handler(build_projection(settings, balances_table))
        event = stream_as_lambda_event(store)
        print(f"first delivery: {invoke(event, None)}")
        print(f"redelivered: {invoke(event, None)}")
        row = store.connection.client.get_item(TableName=balances_table, Key={"account": {"S": account.id}})
        print(f"balance in the read model: {row['Item']['balance']['N']}")


if __name__ == "__main__":
    main()
