"""What a projection does not read costs (almost) nothing: a rebuild reading 10 % of the table.

10,000 events across 100 aggregates of 10 aggregate types (10 aggregates each, 100 events each)
in one table on DynamoDB Local. Interleaved rounds, medians, in one process:
- all: Projection.rebuild(follow=False) of a read model that reads every event;
- 10 %: the same, reading one aggregate type (Selection(aggregate_types=[...])): the other
  90 % are skipped before their event data is decoded, with no checkpoint read or write;
- baselines: raw botocore's consistent Scan of the same table in as many segments (threads), of
  every item and with the 10 % rebuild's filter, no decoding: the floors of the two rebuilds.
  DynamoDB Local evaluates a filtered Scan over the whole table, so the 10 % floor is not 10 %.
Checkpoints in memory and in DynamoDB.

Run: `.venv/bin/python benchmarks/bench_reads.py [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs
from bench_projections import plain_client

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
from dynamo_es.dynamodb.flows.records import selection_filter
from dynamo_es.testing import DynamoDBLocal

KINDS, AGGREGATES_EACH, EVENTS_EACH, SEGMENTS = 10, 10, 100, 4
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


def raw_scan(client: Any, table: str, filters: dict[str, Any]) -> int:
    """Items of a consistent Scan in `SEGMENTS` threads, raw botocore (parsed, not decoded)."""
    counts = [0] * SEGMENTS

    def segment(n: int) -> None:
        kwargs = {"TableName": table, "ConsistentRead": True, "Limit": 1000, "Segment": n, **filters}
        kwargs["TotalSegments"] = SEGMENTS
        while True:
            page = client.scan(**kwargs)
            counts[n] += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    threads = [threading.Thread(target=segment, args=(n,)) for n in range(SEGMENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def rebuild(store: DynamoDBEventStore, checkpoints: CheckpointStore, reads: Selection | None) -> tuple[float, Any]:
    totals: dict[str, int] = {}

    def apply(change: Change) -> None:
        totals[change.event.stream_id] = totals.get(change.event.stream_id, 0) + change.event.event.n

    projection = Projection(f"reads-{uuid.uuid4().hex[:8]}", apply, checkpoints, store, reads=reads)
    start = time.perf_counter()
    progress = projection.rebuild(segments=SEGMENTS, follow=False)
    seconds = time.perf_counter() - start
    expected = TOTAL if reads is None else TOTAL // KINDS
    assert progress.applied == expected and progress.read in (expected, TOTAL), progress
    return seconds, progress


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench(store: DynamoDBEventStore, rounds: int, checkpoints: Callable[[], CheckpointStore]) -> dict[str, float]:
    times: dict[str, list[float]] = {"all": [], "tenth": [], "scan": [], "filtered": []}
    client, table = plain_client(store.settings, "dynamodb"), store.settings.events_table_name
    tenth = Selection(aggregate_types=["Kind0"])
    filters = selection_filter(store._codec, tenth) or {}
    for _ in range(rounds):
        times["scan"].append(timed(lambda: raw_scan(client, table, {}) == TOTAL or sys.exit("scan")))
        times["filtered"].append(
            timed(lambda: raw_scan(client, table, filters) == TOTAL // KINDS or sys.exit("filter"))
        )
        times["all"].append(rebuild(store, checkpoints(), None)[0])
        times["tenth"].append(rebuild(store, checkpoints(), tenth)[0])
    return {name: statistics.median(values) for name, values in times.items()}


def report(label: str, medians: dict[str, float]) -> None:
    all_ms, tenth_ms, scan_ms, filtered_ms = (medians[k] * 1000 for k in ("all", "tenth", "scan", "filtered"))
    print(
        f"{label:<22} reads all {all_ms:6.0f} ms  reads 10 % {tenth_ms:5.0f} ms  ratio {tenth_ms / all_ms:4.2f}x  "
        f"| raw Scan all {scan_ms:5.0f} ms ({all_ms / scan_ms:4.2f}x), filtered {filtered_ms:5.0f} ms "
        f"({tenth_ms / filtered_ms:4.2f}x); floor ratio {filtered_ms / scan_ms:4.2f}x"
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
