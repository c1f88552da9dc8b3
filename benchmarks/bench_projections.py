"""Projection throughput on DynamoDB Local: rebuilding from the table, and following the stream.

10,000 events across 100 aggregates (100 each) in one stream-enabled table. For each case, the
median of interleaved rounds, dynamo-es against raw botocore reading the same items in the same
process without decoding anything:
- rebuild: Projection.rebuild(follow=False) (parallel Scan, decode, version rule, handler,
  checkpoints in memory or in DynamoDB) vs botocore's consistent Scan of the table;
- live: Projection.run(stop_when_idle=True) from the oldest stream record vs botocore's
  GetRecords over the same shard(s).

Run: `.venv/bin/python benchmarks/bench_projections.py [--rounds 5]`.
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
    Change,
    CheckpointStore,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    Projection,
    event,
)
from dynamo_es.testing import DynamoDBLocal

AGGREGATES, EVENTS_EACH = 100, 100


@event(name="BenchCounted")
@attrs.frozen
class Counted:
    n: int
    note: str


def seed(store: DynamoDBEventStore) -> None:
    for index in range(AGGREGATES):
        events = [Counted(n, "benchmark event") for n in range(EVENTS_EACH)]
        store.append(f"agg-{index}", "Bench", events, 0).raise_for_failure()


def plain_client(settings: EventStoreSettings, service: str) -> Any:
    """An ordinary botocore client (full response parsing): the baseline."""
    return botocore.session.get_session().create_client(
        service,
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
    )


def raw_scan(client: Any, table: str) -> int:
    count, kwargs = 0, {"TableName": table, "ConsistentRead": True, "Limit": 1000}
    while True:
        page = client.scan(**kwargs)
        count += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            return count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def raw_stream(client: Any, arn: str) -> int:
    count = 0
    for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        position = iterator["ShardIterator"]
        while position:
            page = client.get_records(ShardIterator=position, Limit=1000)
            count += len(page["Records"])
            if not page["Records"]:
                break
            position = page.get("NextShardIterator")
    return count


def counter() -> tuple[Callable[[Change], None], dict[str, int]]:
    totals: dict[str, int] = {}

    def apply(change: Change) -> None:
        totals[change.event.stream_id] = totals.get(change.event.stream_id, 0) + change.event.event.n

    return apply, totals


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def report(name: str, ours: list[float], baseline: list[float]) -> None:
    total = AGGREGATES * EVENTS_EACH
    ours_s, base_s = statistics.median(ours), statistics.median(baseline)
    print(
        f"{name:<44} dynamo-es {total / ours_s:9,.0f} events/s ({ours_s * 1000:7.0f} ms)   "
        f"raw botocore {total / base_s:9,.0f} events/s ({base_s * 1000:7.0f} ms)   ratio {ours_s / base_s:5.2f}x"
    )


def bench_rebuild(
    store: DynamoDBEventStore, rounds: int, segments: int, checkpoints: Callable[[], CheckpointStore]
) -> tuple[list[float], list[float]]:
    ours, baseline = [], []
    client, table = plain_client(store.settings, "dynamodb"), store.settings.events_table_name
    for _ in range(rounds):
        seconds, count = timed(lambda: raw_scan(client, table))
        assert count == AGGREGATES * EVENTS_EACH
        baseline.append(seconds)
        apply, totals = counter()
        projection = Projection(f"rebuild-{uuid.uuid4().hex[:8]}", apply, checkpoints(), store)
        seconds, progress = timed(lambda projection=projection: projection.rebuild(segments=segments, follow=False))
        assert progress.applied == AGGREGATES * EVENTS_EACH and len(totals) == AGGREGATES
        ours.append(seconds)
    return ours, baseline


def bench_live(store: DynamoDBEventStore, rounds: int) -> tuple[list[float], list[float]]:
    ours, baseline = [], []
    client = plain_client(store.settings, "dynamodbstreams")
    arn = store.ensure_table()["LatestStreamArn"]
    for _ in range(rounds):
        seconds, count = timed(lambda: raw_stream(client, arn))
        assert count == AGGREGATES * EVENTS_EACH
        baseline.append(seconds)
        apply, totals = counter()
        projection = Projection(f"live-{uuid.uuid4().hex[:8]}", apply, InMemoryCheckpointStore(), store)
        seconds, applied = timed(lambda projection=projection: projection.run(stop_when_idle=True))
        assert applied == AGGREGATES * EVENTS_EACH and len(totals) == AGGREGATES
        ours.append(seconds)
    return ours, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with DynamoDBLocal() as local:
        settings = local.settings(
            events_table_name="BenchProjection", checkpoints_table_name="BenchCheckpoints", streams_poll_interval_ms=50
        )
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        DynamoDBCheckpointStore(settings).ensure_table()
        seed(store)
        print(
            f"DynamoDB Local at {local.endpoint_url}; load average {os.getloadavg()[0]:.2f}; medians of {args.rounds}"
        )
        for segments in (1, 4):
            ours, base = bench_rebuild(store, args.rounds, segments, InMemoryCheckpointStore)
            report(f"rebuild, {segments} segment(s), memory checkpoints", ours, base)
        ours, base = bench_rebuild(store, args.rounds, 4, lambda: DynamoDBCheckpointStore(settings))
        report("rebuild, 4 segments, DynamoDB checkpoints", ours, base)
        ours, base = bench_live(store, args.rounds)
        report("live stream (run until idle), memory checkpoints", ours, base)
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
