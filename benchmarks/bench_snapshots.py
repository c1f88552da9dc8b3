"""Loading a 10,000-event aggregate: full replay vs a snapshot every 100 events.

Both repositories read the same stream on the same DynamoDB Local, interleaved; medians and
the ratio are printed. Run: `make bench` (or `.venv/bin/python benchmarks/bench_snapshots.py`).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from decimal import Decimal

import attrs

from dynamo_es import AggregateRoot, DynamoDBEventStore, DynamoDBSnapshotStore, EveryNEvents, Repository, applies, event
from dynamo_es.testing import DynamoDBLocal


@event(name="BenchAmountAdded")
@attrs.frozen
class AmountAdded:
    amount: Decimal
    memo: str


class Counter(AggregateRoot, aggregate_type="BenchCounter"):
    total: Decimal
    count: int

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.total = Decimal(0)
        self.count = 0

    def add(self, amount: Decimal) -> None:
        self.record(AmountAdded(amount, "benchmark"))

    @applies(AmountAdded)
    def _added(self, event: AmountAdded) -> None:
        self.total += event.amount
        self.count += 1


def timed_ms(function: object) -> float:
    start = time.perf_counter()
    function()  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with DynamoDBLocal() as local:
        settings = local.settings(events_table_name="BenchSnapEvents", enable_streams=False)
        store = DynamoDBEventStore(settings)
        full = Repository(Counter, store)
        snapped = Repository(
            Counter, store, snapshots=DynamoDBSnapshotStore(settings), snapshot_strategy=EveryNEvents(args.every)
        )
        counter = Counter(f"c-{uuid.uuid4()}")
        for n in range(args.events):
            counter.add(Decimal(n % 7))
            if counter.version % 100 == 0:
                snapped.save(counter)
        snapped.save(counter)
        assert full.get(counter.id).total == snapped.get(counter.id).total == counter.total
        print(f"medians of {args.rounds} interleaved rounds")
        measure(full, snapped, counter.id, args.rounds, f"{args.events:,} events, snapshot at the last one")
        for _ in range(args.every // 2):
            counter.add(Decimal(1))
        snapped.save(counter)
        measure(full, snapped, counter.id, args.rounds, f"{counter.version:,} events, {args.every // 2}-event tail")


def measure(full: Repository[Counter], snapped: Repository[Counter], counter_id: str, rounds: int, label: str) -> None:
    full_ms, snap_ms = [], []
    for _ in range(rounds):
        full_ms.append(timed_ms(lambda: full.get(counter_id)))
        snap_ms.append(timed_ms(lambda: snapped.get(counter_id)))
    full_median, snap_median = statistics.median(full_ms), statistics.median(snap_ms)
    print(
        f"{label:<42} full replay {full_median:7.1f} ms   snapshot {snap_median:6.1f} ms   "
        f"ratio {full_median / snap_median:5.1f}x"
    )


if __name__ == "__main__":
    main()
