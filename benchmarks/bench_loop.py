"""The async store on the event loop: AsyncRepository.get against the raw client, and the loop's pauses.

On one DynamoDB Local, in one process, medians of interleaved rounds:
- AsyncRepository.get of a 10,000- and a 50,000-event aggregate (decode and replay) against
  botocore's client.query of the same pages with nothing decoded (the sync baseline of
  bench_speed.py; goal <= 0.55x);
- during each 10,000-event load, a task that sleeps 1 ms in a loop: its longest pause and the
  99th percentile of its pauses (goals <= 20 ms and <= 5 ms). Nothing helps the measurement: the
  cyclic garbage collector runs as usual (no gc.freeze), with the events of earlier loads alive.

With ``--pin`` (Linux), DynamoDB Local runs on the first core and this process on the second, as
in production, where DynamoDB is on other machines: the ticker then sees only this process's own
work, not the server's threads taking its core.

Run: `.venv/bin/python benchmarks/bench_loop.py [--rounds 7] [--pin]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import Any

from bench_speed import Account, Deposited, plain_client, raw_query

from dynamo_es import DynamoDBEventStore
from dynamo_es.aio import AsyncRepository
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.testing import DynamoDBLocal


async def load_with_ticker(accounts: AsyncRepository[Account], account_id: str) -> tuple[float, list[float]]:
    """(load milliseconds, the ticker's pauses in seconds) for one load."""
    pauses: list[float] = []
    loading = True

    async def ticker() -> None:
        last = time.perf_counter()
        while loading:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            pauses.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.005)
    start = time.perf_counter()
    await accounts.get(account_id)
    elapsed = time.perf_counter() - start
    loading = False
    await ticking
    return elapsed * 1000, pauses


def seed(store: DynamoDBEventStore, size: int) -> str:
    account_id = f"loop-{uuid.uuid4()}"
    store.append(account_id, "Account", [Deposited(1, "benchmark deposit") for _ in range(size)], 0).raise_for_failure()
    return account_id


def timed_ms(function: Any) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1000


async def bench(settings: Any, client: Any, ids: dict[int, str], rounds: int) -> None:
    async with AsyncDynamoDBEventStore(settings) as store:
        accounts = AsyncRepository(Account, store)
        kept = [await accounts.get(ids[10_000])]  # loaded aggregates stay alive, as in a service
        for size, account_id in ids.items():
            ours, raw, longest, p99 = [], [], [], []
            for _ in range(rounds if size == 10_000 else max(3, rounds // 2)):
                stream = f"Account:{account_id}"
                raw.append(timed_ms(lambda stream=stream: raw_query(client, settings.events_table_name, stream)))
                elapsed, pauses = await load_with_ticker(accounts, account_id)
                ours.append(elapsed)
                pauses.sort()
                longest.append(pauses[-1] * 1000)
                p99.append(pauses[int(len(pauses) * 0.99)] * 1000)
                kept.append(await accounts.get(ids[10_000]))
            ours_ms, raw_ms = statistics.median(ours), statistics.median(raw)
            print(
                f"AsyncRepository.get of {size:,} events  dynamo-es {ours_ms:8.1f} ms   raw {raw_ms:8.1f} ms   "
                f"ratio {ours_ms / raw_ms:5.2f}x  (goal <= 0.55x)"
            )
            print(
                f"  1 ms ticker during it: longest pause {statistics.median(longest):5.1f} ms (goal <= 20), "
                f"p99 {statistics.median(p99):4.1f} ms (goal <= 5); worst round {max(longest):5.1f} ms"
            )


def pin(local: DynamoDBLocal) -> None:
    """The server's threads (all of them, and so the ones they start) on core 0; this process on core 1."""
    server = local.pid
    for thread in os.listdir(f"/proc/{server}/task"):
        os.sched_setaffinity(int(thread), {0})
    os.sched_setaffinity(0, {1})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pin", action="store_true", help="server on core 0, this process on core 1")
    args = parser.parse_args()
    with DynamoDBLocal() as local:
        settings = local.settings(events_table_name="LoopEvents", enable_streams=False)
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        ids = {size: seed(store, size) for size in (10_000, 50_000)}
        if args.pin:
            pin(local)
        pinned = "; server on core 0, this process on core 1" if args.pin else ""
        print(f"DynamoDB Local at {local.endpoint_url}; load average {os.getloadavg()[0]:.2f}; medians{pinned}")
        asyncio.run(bench(settings, plain_client(settings), ids, args.rounds))
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
