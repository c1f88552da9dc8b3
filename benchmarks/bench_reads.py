"""What a projection does not read costs (almost) nothing: a rebuild reading 10 % of the table.

10,000 events across 100 aggregates of 10 aggregate types (10 aggregates each, 100 events each)
in one table on DynamoDB Local. Interleaved rounds, medians, in one process:
- all: Projection.rebuild(follow=False) of a read model that reads every event;
- 10 %: the same, reading one aggregate type (Selection(aggregate_types=[...])): the other
  90 % are skipped before their event data is decoded, with no checkpoint read or write;
- baseline: raw botocore's consistent Scan of the same table (no decoding), the floor of both.
Checkpoints in memory and in DynamoDB.

Run: `.venv/bin/python benchmarks/bench_reads.py [--rounds 5]`.
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
from bench_projections import plain_client, raw_scan

from dynamo_es import (
    Change,
    CheckpointStore,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    InMemoryCheckpointStore,
    Projection,
    Selection,
    event,
)
from dynamo_es.testing import DynamoDBLocal

KINDS, AGGREGATES_EACH, EVENTS_EACH = 10, 10, 100
TOTAL = KINDS * AGGREGATES_EACH * EVENTS_EACH


@event(name="BenchReadsCounted")
@attrs.frozen
class Counted:
    n: int
    note: str


def seed(store: DynamoDBEventStore) -> None:
    for kind in range(KINDS):
        for index in range(AGGREGATES_EACH):
            events = [Counted(n, "benchmark event with a little text") for n in range(EVENTS_EACH)]
            store.append(f"agg-{index}", f"Kind{kind}", events, 0).raise_for_failure()


def rebuild(store: DynamoDBEventStore, checkpoints: CheckpointStore, reads: Selection | None) -> tuple[float, Any]:
    totals: dict[str, int] = {}

    def apply(change: Change) -> None:
        totals[change.event.stream_id] = totals.get(change.event.stream_id, 0) + change.event.event.n

    projection = Projection(f"reads-{uuid.uuid4().hex[:8]}", apply, checkpoints, store, reads=reads)
    start = time.perf_counter()
    progress = projection.rebuild(segments=4, follow=False)
    seconds = time.perf_counter() - start
    expected = TOTAL if reads is None else TOTAL // KINDS
    assert progress.applied == expected and progress.read in (expected, TOTAL), progress
    return seconds, progress


def bench(store: DynamoDBEventStore, rounds: int, checkpoints: Callable[[], CheckpointStore]) -> dict[str, float]:
    times: dict[str, list[float]] = {"all": [], "tenth": [], "scan": []}
    client, table = plain_client(store.settings, "dynamodb"), store.settings.events_table_name
    tenth = Selection(aggregate_types=["Kind0"])
    for _ in range(rounds):
        start = time.perf_counter()
        assert raw_scan(client, table) == TOTAL
        times["scan"].append(time.perf_counter() - start)
        times["all"].append(rebuild(store, checkpoints(), None)[0])
        times["tenth"].append(rebuild(store, checkpoints(), tenth)[0])
    return {name: statistics.median(values) for name, values in times.items()}


def report(label: str, medians: dict[str, float]) -> None:
    all_ms, tenth_ms, scan_ms = (medians[k] * 1000 for k in ("all", "tenth", "scan"))
    print(
        f"{label:<22} reads all {all_ms:7.0f} ms   reads 10 % {tenth_ms:7.0f} ms   ratio {tenth_ms / all_ms:4.2f}x   "
        f"(raw Scan {scan_ms:5.0f} ms; above it: all {all_ms - scan_ms:6.0f} ms, 10 % {tenth_ms - scan_ms:6.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with DynamoDBLocal() as local:
        settings = local.settings(events_table_name="BenchReads", checkpoints_table_name="BenchReadsCheckpoints")
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        DynamoDBCheckpointStore(settings).ensure_table()
        seed(store)
        print(f"load average {os.getloadavg()[0]:.2f}; {TOTAL:,} events; medians of {args.rounds} rounds")
        report("DynamoDB checkpoints", bench(store, args.rounds, lambda: DynamoDBCheckpointStore(settings)))
        report("memory checkpoints", bench(store, args.rounds, InMemoryCheckpointStore))
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
