"""Store overhead against raw botocore, on one DynamoDB Local, in one process.

Measures (medians over rounds, interleaved so drift hits both sides alike):
- append: one 100-event transaction through DynamoDBEventStore.append vs the same items sent
  with botocore's transact_write_items (same conditions);
- load: a 10,000-event stream through DynamoDBEventStore.load (decoded events) vs botocore's
  paginated consistent Query of the same partition (raw items, nothing decoded).

Run: `make bench` (or `.venv/bin/python benchmarks/bench_store.py --rounds 15`).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from dynamo_es import DynamoDBEventStore, NewEvent, event
from dynamo_es.testing import DynamoDBLocal


@event(name="BenchDeposited")
@attrs.frozen
class Deposited:
    account: str
    amount: int
    note: str


def make_events(count: int) -> list[Deposited]:
    return [Deposited("acc", n, "benchmark deposit") for n in range(count)]


def raw_transaction(store: DynamoDBEventStore, aggregate_id: str, events: list[Deposited]) -> list[dict[str, Any]]:
    """The TransactItems the raw side sends: the same items and conditions as the store's."""
    table = store.settings.events_table_name
    items = []
    for version, item in enumerate(events, start=1):
        record = store.serializer.encode(
            NewEvent(item), aggregate_type="Bench", aggregate_id=aggregate_id, version=version
        )
        items.append(
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        "pk": {"S": record.stream_id},
                        "sk": {"N": str(record.version)},
                        "eventId": {"S": record.event_id},
                        "aggregateId": {"S": record.aggregate_id},
                        "aggregateType": {"S": record.aggregate_type},
                        "eventType": {"S": record.event_type},
                        "version": {"N": str(record.version)},
                        "timestamp": {"S": record.timestamp},
                        "eventData": {"S": record.event_data},
                        "metadata": {"S": record.metadata},
                        "isDispatched": {"BOOL": False},
                        "outboxPending": {"S": "0"},
                    },
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
        )
    return items


def raw_query_all(client: Any, table: str, stream_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": stream_id}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def report(name: str, ours: list[float], baseline: list[float]) -> None:
    ours_ms, base_ms = statistics.median(ours), statistics.median(baseline)
    print(f"{name:<34} dynamo-es {ours_ms:8.1f} ms   raw botocore {base_ms:8.1f} ms   ratio {ours_ms / base_ms:5.2f}x")


def bench_append(store: DynamoDBEventStore, client: Any, rounds: int) -> None:
    ours, baseline = [], []
    events = make_events(100)
    for _ in range(rounds):
        items = raw_transaction(store, f"raw-{uuid.uuid4()}", events)
        baseline.append(timed(lambda items=items: client.transact_write_items(TransactItems=items)))
        aggregate_id = f"ours-{uuid.uuid4()}"
        ours.append(timed(lambda aggregate_id=aggregate_id: store.append(aggregate_id, "Bench", events, 0)))
    report("append 100 events (1 transaction)", ours, baseline)


def bench_load(store: DynamoDBEventStore, client: Any, rounds: int, size: int) -> None:
    aggregate_id = f"long-{uuid.uuid4()}"
    result = store.append(aggregate_id, "Bench", make_events(size), 0)
    assert result.success and result.new_version == size
    stream_id = f"Bench:{aggregate_id}"
    table = store.settings.events_table_name
    ours, baseline = [], []
    for _ in range(rounds):
        baseline.append(timed(lambda: raw_query_all(client, table, stream_id)))
        ours.append(timed(lambda: store.load(aggregate_id, "Bench")))
    assert len(store.load(aggregate_id, "Bench")) == size
    report(f"load {size:,} events", ours, baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--stream-size", type=int, default=10_000)
    args = parser.parse_args()
    with DynamoDBLocal() as local:
        store = DynamoDBEventStore(local.settings(events_table_name="BenchEvents"))
        store.ensure_table()
        client = store.connection.client
        print(f"DynamoDB Local at {local.endpoint_url}; medians of {args.rounds} interleaved rounds")
        bench_append(store, client, args.rounds)
        bench_load(store, client, max(3, args.rounds // 2), args.stream_size)


if __name__ == "__main__":
    main()
