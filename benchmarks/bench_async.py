"""The asyncio store against the sync one: 200 saves to 200 different aggregates (issue "An asyncio API").

On one DynamoDB Local, in one process, interleaved rounds, medians. Each save is a new
aggregate with two events (one transaction). Cases:
- async: ``asyncio.gather`` of 200 ``AsyncRepository.save`` on one ``AsyncDynamoDBEventStore``;
- sync, sequential: 200 ``Repository.save`` one after the other;
- sync, 8 threads: the same 200 saves on a ``ThreadPoolExecutor(8)`` sharing one store;
- baseline: raw botocore, sequential, ``transact_write_items`` of the same two conditional Puts.

Run: `.venv/bin/python benchmarks/bench_async.py [--rounds 5] [--saves 200]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import botocore.session

from dynamo_es import AggregateRoot, DynamoDBEventStore, EventStoreSettings, Repository, applies, event
from dynamo_es.aio import AsyncRepository
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.testing import DynamoDBLocal


@event(name="AsyncBenchOpened")
@attrs.frozen
class Opened:
    owner: str


@event(name="AsyncBenchDeposited")
@attrs.frozen
class Deposited:
    amount: int


class Account(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0

    @classmethod
    def open(cls, aggregate_id: str) -> Account:
        account = cls(aggregate_id)
        account.record(Opened("bench"))
        account.record(Deposited(10))
        return account

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        self.balance = 0

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount


def fresh(saves: int) -> list[Account]:
    prefix = uuid.uuid4().hex[:8]
    return [Account.open(f"{prefix}-{n}") for n in range(saves)]


def sync_sequential(store: DynamoDBEventStore, saves: int) -> float:
    accounts, repository = fresh(saves), Repository(Account, store)
    began = time.perf_counter()
    for account in accounts:
        repository.save(account)
    return time.perf_counter() - began


def sync_threads(store: DynamoDBEventStore, saves: int) -> float:
    accounts, repository = fresh(saves), Repository(Account, store)
    with ThreadPoolExecutor(8) as pool:
        began = time.perf_counter()
        list(pool.map(repository.save, accounts))
        return time.perf_counter() - began


def async_gather(loop: asyncio.AbstractEventLoop, store: AsyncDynamoDBEventStore, saves: int) -> float:
    accounts, repository = fresh(saves), AsyncRepository(Account, store)

    async def run() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(repository.save(account) for account in accounts))
        return time.perf_counter() - began

    return loop.run_until_complete(run())


def raw_sequential(client: Any, store: DynamoDBEventStore, saves: int) -> float:
    """The same two conditional Puts per aggregate, encoded before the clock starts."""
    calls = []
    for account in fresh(saves):
        _, records = store._core.encode(account.id, "Account", account.uncommitted_events, 0, None)
        items = [
            {
                "Put": {
                    "TableName": store.settings.events_table_name,
                    "Item": store._codec.encode(record),
                    "ConditionExpression": "attribute_not_exists(sk)",
                }
            }
            for record in records
        ]
        calls.append(items)
    began = time.perf_counter()
    for items in calls:
        client.transact_write_items(TransactItems=items)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    with DynamoDBLocal() as local:
        settings = local.settings(events_table_name="AsyncBench", enable_streams=False)
        report(settings, args.rounds, args.saves)


def report(settings: EventStoreSettings, rounds: int, saves: int) -> None:
    store = DynamoDBEventStore(settings)
    store.ensure_table()
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
    )
    loop = asyncio.new_event_loop()
    async_store = AsyncDynamoDBEventStore(settings)
    loop.run_until_complete(async_store.ensure_table())
    cases: dict[str, Callable[[], float]] = {
        "raw botocore, sequential": lambda: raw_sequential(client, store, saves),
        "sync store, sequential": lambda: sync_sequential(store, saves),
        "sync store, 8 threads": lambda: sync_threads(store, saves),
        "async store, gather": lambda: async_gather(loop, async_store, saves),
    }
    for run in cases.values():  # warm-up: connections, table checks
        run()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            times[name].append(run())
    loop.run_until_complete(async_store.close())
    loop.close()
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{saves} saves of a new 2-event aggregate, median of {rounds} rounds; load average {os.getloadavg()}")
    sequential = medians["sync store, sequential"]
    for name, seconds in medians.items():
        print(f"  {name:<26} {seconds * 1000:8.1f} ms  {saves / seconds:7.0f} saves/s  ", end="")
        print(f"{sequential / seconds:5.2f}x the sync sequential throughput")
    print(f"  async gather / 8 threads: {medians['sync store, 8 threads'] / medians['async store, gather']:.2f}x")


if __name__ == "__main__":
    main()
