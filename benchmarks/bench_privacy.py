"""Crypto-shredding's cost on a load: a 10,000-event aggregate with one personal field per event.

In-memory and on DynamoDB Local, in one process, medians of interleaved rounds: Repository.get of
an aggregate whose events each carry one `personal()` field (sealed with AES-256-GCM, the data key
cached) against the same aggregate whose events carry the field unmarked (issue goal <= 1.3x).

Run: `.venv/bin/python benchmarks/bench_privacy.py [--rounds 7]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import attrs

from dynamo_es import (
    AggregateRoot,
    DynamoDBEventStore,
    EventSerializer,
    EventStore,
    InMemoryEventStore,
    Repository,
    applies,
    event,
    personal,
    subject,
)
from dynamo_es.privacy import CryptoShredder, InMemoryKeyStore, LocalKeyWrapper
from dynamo_es.testing import DynamoDBLocal

SIZE = 10_000


@event(name="BenchPlainNoted")
@attrs.frozen
class PlainNoted:
    customer_id: str
    email: str
    amount: int


@event(name="BenchSealedNoted")
@attrs.frozen
class SealedNoted:
    customer_id: str = subject()
    email: str = personal()
    amount: int = 0


class Ledger(AggregateRoot, aggregate_type="BenchLedger"):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.total = 0

    @applies(PlainNoted, SealedNoted)
    def _noted(self, event: Any) -> None:
        self.total += event.amount


def timed_ms(function: Any) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


def bench(name: str, store: EventStore, rounds: int) -> None:
    store.append("plain", "BenchLedger", [PlainNoted("cust-1", "a@example.com", 1) for _ in range(SIZE)], 0)
    store.append("sealed", "BenchLedger", [SealedNoted("cust-1", "a@example.com", 1) for _ in range(SIZE)], 0)
    ledgers = Repository(Ledger, store)
    assert ledgers.get("sealed").total == ledgers.get("plain").total == SIZE
    plain, sealed = [], []
    for round_number in range(rounds):
        runs = [(lambda: ledgers.get("plain"), plain), (lambda: ledgers.get("sealed"), sealed)]
        for function, times in runs if round_number % 2 == 0 else reversed(runs):
            times.append(timed_ms(function))
    ours, base = statistics.median(sealed), statistics.median(plain)
    print(f"{name:<34} sealed {ours:8.1f} ms   unmarked {base:8.1f} ms   ratio {ours / base:5.2f}x  (goal <= 1.3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    shredder = CryptoShredder(InMemoryKeyStore(), LocalKeyWrapper(os.urandom(32)))
    serializer = EventSerializer(shredder=shredder)
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.rounds}; Repository.get of {SIZE:,} events")
    bench("in memory", InMemoryEventStore(serializer=serializer), args.rounds)
    with DynamoDBLocal() as local:
        store = DynamoDBEventStore(local.settings(events_table_name="PrivacyBench"), serializer=serializer)
        store.ensure_table()
        bench("DynamoDB Local", store, max(3, args.rounds // 2))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
