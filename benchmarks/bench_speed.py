"""dynamo-es against the raw client, case by case (issue "Faster than the raw client").

On one DynamoDB Local, in one process, interleaved rounds (who goes first alternates: the server is
slower for whichever request follows a load), medians; the baseline is an ordinary
botocore client (full response parsing) sending the same items or reading the same pages:
- Repository.save of 100 events onto an existing stream vs transact_write_items of the same 100
  conditional Puts (items built before the clock starts), and the client CPU time of each;
- a 1,000-event append vs the same 10 transactions;
- Repository.get of a 10,000-event aggregate, decoded and replayed, vs client.query of the same
  pages with nothing decoded;
- client-side time per event (this process's CPU time) for 100 vs 1,000-event appends
  and 10,000 vs 50,000-event loads: scaling must be linear;
- the in-memory store: replay of 10,000 events, events/s.

Run: `.venv/bin/python benchmarks/bench_speed.py [--rounds 9]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import botocore.session

from dynamo_es import (
    AggregateRoot,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryEventStore,
    Repository,
    applies,
    event,
)
from dynamo_es.testing import DynamoDBLocal


@event(name="SpeedDeposited")
@attrs.frozen
class Deposited:
    amount: int
    note: str


class Account(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0

    def deposit(self, amount: int) -> None:
        self.record(Deposited(amount, "benchmark deposit"))

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount


def plain_client(settings: EventStoreSettings) -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
    )


def raw_items(store: DynamoDBEventStore, stream: str, first: int, count: int) -> list[dict[str, Any]]:
    """The same conditional Puts the store sends, built by hand for the raw client."""
    table, items = store.settings.events_table_name, []
    for version in range(first, first + count):
        item = {
            "pk": {"S": stream},
            "sk": {"N": str(version)},
            "eventId": {"S": str(uuid.uuid4())},
            "aggregateId": {"S": stream.split(":", 1)[1]},
            "aggregateType": {"S": "Account"},
            "eventType": {"S": "SpeedDeposited"},
            "version": {"N": str(version)},
            "timestamp": {"S": "2026-11-25T09:00:00.000000+00:00"},
            "eventData": {"S": "eyJhbW91bnQiOjEsIm5vdGUiOiJiZW5jaG1hcmsgZGVwb3NpdCJ9"},
            "metadata": {"S": '{"schemaVersion":1}'},
            "isDispatched": {"BOOL": False},
            "outboxPending": {"S": "0"},
        }
        items.append({"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(sk)"}})
    return items


def timed(function: Callable[[], Any]) -> tuple[float, float]:
    """(total, client-side) milliseconds of ``function``: client-side is this process's CPU time.

    CPU time, not wall time minus time in HTTP: a load reads its version ranges on several
    threads at once, and DynamoDB Local's own work is another process's.
    """
    cpu_before = time.process_time()
    start = time.perf_counter()
    function()
    total = time.perf_counter() - start
    return total * 1000, (time.process_time() - cpu_before) * 1000


def report(name: str, ours: list[float], baseline: list[float], goal: str) -> None:
    ours_ms, base_ms = statistics.median(ours), statistics.median(baseline)
    print(f"{name:<46} dynamo-es {ours_ms:8.1f} ms   raw {base_ms:8.1f} ms   ratio {ours_ms / base_ms:5.2f}x  ({goal})")


def bench_save(store: DynamoDBEventStore, client: Any, rounds: int) -> None:
    """Wall time and this process's CPU time of a save against the raw transaction; who goes first alternates."""
    accounts = Repository(Account, store)
    ours, raw, ours_cpu, raw_cpu = [], [], [], []
    for round_number in range(rounds):
        account = Account(f"save-{uuid.uuid4()}")
        account.deposit(1)
        accounts.save(account)
        loaded = accounts.get(account.id)
        for n in range(100):
            loaded.deposit(n)
        stream = f"Account:raw-{uuid.uuid4()}"
        client.transact_write_items(TransactItems=raw_items(store, stream, 1, 1))
        items = raw_items(store, stream, 2, 100)
        runs = [
            (lambda loaded=loaded: accounts.save(loaded), ours, ours_cpu),
            (lambda items=items: client.transact_write_items(TransactItems=items), raw, raw_cpu),
        ]
        for function, walls, cpus in runs if round_number % 2 == 0 else reversed(runs):
            wall, cpu = timed(function)
            walls.append(wall)
            cpus.append(cpu)
    report("Repository.save of 100 onto an existing stream", ours, raw, "goal <= 0.90x")
    report("  its client CPU (this process's CPU time)", ours_cpu, raw_cpu, "the part that is ours")


def bench_append(store: DynamoDBEventStore, client: Any, rounds: int, size: int) -> tuple[float, float]:
    ours, raw, client_side, raw_cpu = [], [], [], []
    events = [Deposited(n, "benchmark deposit") for n in range(size)]
    for round_number in range(rounds):
        stream = f"Account:raw-{uuid.uuid4()}"
        batches = [raw_items(store, stream, first, 100) for first in range(1, size + 1, 100)]
        runs = [
            (lambda: store.append(f"app-{uuid.uuid4()}", "Account", events, 0).raise_for_failure(), ours, client_side),
            (lambda batches=batches: [client.transact_write_items(TransactItems=b) for b in batches], raw, raw_cpu),
        ]
        for function, walls, cpus in runs if round_number % 2 == 0 else reversed(runs):
            wall, cpu = timed(function)
            walls.append(wall)
            cpus.append(cpu)
    report(f"append of {size:,} events", ours, raw, "goal <= 0.90x")
    return statistics.median(client_side), size


def raw_query(client: Any, table: str, stream: str) -> int:
    count, kwargs = (
        0,
        {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": stream}},
            "ConsistentRead": True,
        },
    )
    while True:
        page = client.query(**kwargs)
        count += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            return count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def bench_load(store: DynamoDBEventStore, client: Any, rounds: int, size: int) -> tuple[float, float]:
    account_id = f"long-{uuid.uuid4()}"
    events = [Deposited(1, "benchmark deposit") for _ in range(size)]
    store.append(account_id, "Account", events, 0).raise_for_failure()
    accounts = Repository(Account, store)
    ours, raw, client_side = [], [], []
    for _ in range(rounds):
        raw.append(timed(lambda: raw_query(client, store.settings.events_table_name, f"Account:{account_id}"))[0])
        total, local = timed(lambda: accounts.get(account_id))
        ours.append(total)
        client_side.append(local)
    assert accounts.get(account_id).balance == size
    report(f"Repository.get of {size:,} events (decode+replay)", ours, raw, "goal <= 0.55x")
    return statistics.median(client_side), size


def bench_memory(rounds: int) -> None:
    events = [Deposited(1, "benchmark deposit") for _ in range(10_000)]
    first, repeat = [], []
    for _ in range(rounds):
        store = InMemoryEventStore()
        store.append("mem", "Account", events, 0)
        accounts = Repository(Account, store)
        first.append(timed(lambda accounts=accounts: accounts.get("mem"))[0] / 1000)
        repeat.append(timed(lambda accounts=accounts: accounts.get("mem"))[0] / 1000)
    rates = (
        f"first load {10_000 / statistics.median(first):,.0f}, later loads {10_000 / statistics.median(repeat):,.0f}"
    )
    print(f"{'in-memory replay of 10,000 events':<46} events/s: {rates}  (goal >= 400,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with DynamoDBLocal() as local:
        store = DynamoDBEventStore(local.settings(events_table_name="SpeedEvents"))
        store.ensure_table()
        client = plain_client(store.settings)
        print(
            f"DynamoDB Local at {local.endpoint_url}; load average {os.getloadavg()[0]:.2f}; medians of {args.rounds}"
        )
        bench_save(store, client, args.rounds)
        append_small = bench_append(store, client, args.rounds, 100)
        append_large = bench_append(store, client, max(3, args.rounds // 3), 1_000)
        load_small = bench_load(store, client, max(3, args.rounds // 2), 10_000)
        load_large = bench_load(store, client, 3, 50_000)
        for name, (small, n_small), (large, n_large) in (
            ("append", append_small, append_large),
            ("load", load_small, load_large),
        ):
            print(
                f"client CPU per event, {name}: {small / n_small * 1000:6.1f} us at {n_small:,}, "
                f"{large / n_large * 1000:6.1f} us at {n_large:,} (ratio {large / n_large / (small / n_small):4.2f})"
            )
        bench_memory(args.rounds)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
