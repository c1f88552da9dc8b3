"""What tracing and metrics cost an append and a load (issue "See it work in production").

On one DynamoDB Local, in one process, interleaved rounds (the order of the modes rotates),
medians of wall time and of this process's CPU time, in three modes of dynamo-es and beside
the raw botocore client sending the same items or reading the same pages:
- off: as if the OpenTelemetry API were not installed (no span object is made at all);
- api: the API installed, no provider set (its no-op tracer and meter) -- goal <= 1.01x of off;
- sdk: the SDK's TracerProvider (batch processor) and MeterProvider, exporting to nothing --
  goal <= 1.05x of off.
Cases: an append of 100 events to a new stream (one transaction), and Repository.get of a
10,000-event aggregate (decoded and replayed).

Run: `.venv/bin/python benchmarks/bench_observability.py [--rounds 15]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import timeit
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from bench_speed import Account, Deposited, plain_client, raw_items, raw_query, timed
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from dynamo_es import DynamoDBEventStore, Repository
from dynamo_es.observability import configure, metrics, operations, tracing
from dynamo_es.observability.tracing import current_traceparent
from dynamo_es.testing import DynamoDBLocal

MODES = ("off", "api", "sdk", "raw")


class NoSpans(SpanExporter):
    """An exporter that sends nothing anywhere: the cost measured is dynamo-es' and the SDK's."""

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class NoMetrics(MetricExporter):
    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def mode_switch() -> Callable[[str], None]:
    """A function that puts dynamo-es in one of the modes."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(NoSpans()))
    meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(NoMetrics(), 60_000)])

    global_tracer = tracing._GLOBAL_TRACER

    def use(mode: str) -> None:
        configure(
            tracer_provider=tracer_provider if mode == "sdk" else None,
            meter_provider=meter_provider if mode == "sdk" else None,
        )
        # what an ImportError of the API leaves: no tracer, no instruments
        metrics.available = mode != "off"
        tracing._GLOBAL_TRACER = None if mode == "off" else global_tracer

    return use


def instrumentation_cost(use: Callable[[str], None], number: int = 20_000) -> dict[str, tuple[float, float]]:
    """Microseconds of dynamo-es' own tracing and metrics work for one append and one load, per mode.

    The same calls the store makes around an append (span, traceparent for the metadata,
    outcome, metrics) and a load, without the I/O: a figure the machine's noise cannot hide.
    """

    class Appended:
        success, conflict, new_version, error, stream_id = True, False, 100, None, "Account:a"

    def append() -> None:
        with operations.appending("T", 0) as span:
            current_traceparent()
            operations.appended(span, Appended, 100)

    def load() -> None:
        with operations.loading("T", "Account:a", 1, None) as span:
            operations.loaded(span, 10_000)

    costs = {}
    for mode in ("off", "api", "sdk"):
        use(mode)
        costs[mode] = tuple(timeit.timeit(case, number=number) / number * 1e6 for case in (append, load))
    use("api")
    return costs  # type: ignore[return-value]


def rounds_of(cases: dict[str, Callable[[], Any]], rounds: int, use: Callable[[str], None]) -> dict[str, Any]:
    walls: dict[str, list[float]] = {mode: [] for mode in cases}
    cpus: dict[str, list[float]] = {mode: [] for mode in cases}
    order = list(cases)
    for round_number in range(rounds):
        for mode in order[round_number % len(order) :] + order[: round_number % len(order)]:
            use(mode if mode != "raw" else "off")
            wall, cpu = timed(cases[mode])
            walls[mode].append(wall)
            cpus[mode].append(cpu)
    use("api")
    return {mode: (statistics.median(walls[mode]), statistics.median(cpus[mode])) for mode in cases}


def report(name: str, medians: dict[str, tuple[float, float]], cost_us: dict[str, float]) -> None:
    off_wall, off_cpu = medians["off"]
    print(f"{name}")
    for mode in MODES:
        wall, cpu = medians[mode]
        print(
            f"  {mode:<4} wall {wall:8.2f} ms ({wall / off_wall:5.3f}x of off)   "
            f"client CPU {cpu:7.2f} ms ({cpu / off_cpu:5.3f}x of off)"
        )
    print(f"  goals: api <= 1.01x, sdk <= 1.05x of off; off is {off_wall / medians['raw'][0]:4.2f}x of raw botocore")
    for mode in ("api", "sdk"):
        extra = cost_us[mode] - cost_us["off"]
        print(
            f"  {mode}: its own work {cost_us[mode]:6.1f} us a call (off: {cost_us['off']:4.1f} us), "
            f"{1 + extra / 1000 / off_wall:7.4f}x of off's median wall time"
        )


def bench_append(
    store: DynamoDBEventStore, client: Any, rounds: int, use: Callable[[str], None], cost_us: dict[str, float]
) -> None:
    events = [Deposited(n, "benchmark deposit") for n in range(100)]

    def ours() -> None:
        store.append(f"obs-{uuid.uuid4()}", "Account", events, 0).raise_for_failure()

    def raw() -> None:
        client.transact_write_items(TransactItems=raw_items(store, f"Account:raw-{uuid.uuid4()}", 1, 100))

    cases = {"off": ours, "api": ours, "sdk": ours, "raw": raw}
    report("append of 100 events (one transaction)", rounds_of(cases, rounds, use), cost_us)


def bench_load(
    store: DynamoDBEventStore, client: Any, rounds: int, use: Callable[[str], None], cost_us: dict[str, float]
) -> None:
    account_id = f"obs-long-{uuid.uuid4()}"
    store.append(account_id, "Account", [Deposited(1, "benchmark deposit")] * 10_000, 0).raise_for_failure()
    accounts = Repository(Account, store)

    def ours() -> None:
        accounts.get(account_id)

    def raw() -> None:
        raw_query(client, store.settings.events_table_name, f"Account:{account_id}")

    cases = {"off": ours, "api": ours, "sdk": ours, "raw": raw}
    report("Repository.get of 10,000 events (decode+replay)", rounds_of(cases, rounds, use), cost_us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    use = mode_switch()
    with DynamoDBLocal() as local:
        store = DynamoDBEventStore(local.settings(events_table_name="ObservedEvents"))
        store.ensure_table()
        client = plain_client(store.settings)
        print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.rounds} rounds, modes interleaved")
        costs = instrumentation_cost(use)
        bench_append(store, client, args.rounds, use, {mode: cost[0] for mode, cost in costs.items()})
        bench_load(store, client, max(5, args.rounds // 2), use, {mode: cost[1] for mode, cost in costs.items()})
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
