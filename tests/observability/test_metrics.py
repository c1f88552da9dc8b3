"""Metric values after a scripted run, and the structured fields of dynamo-es' log records (real SDK)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    InMemoryEventStore,
    OutboxDispatcher,
    Projection,
    StoredEvent,
)
from dynamo_es.observability import LOG_FIELDS
from dynamo_es.testing import DynamoDBLocal, FaultProxy

from .conftest import OrderPlaced, Telemetry

pytestmark = pytest.mark.ddblocal


def refuse(stored: StoredEvent) -> None:
    raise ConnectionError("broker down")


def fail_on(aggregate_id: str) -> Callable[[Change], None]:
    def handler(change: Change) -> None:
        if change.event.aggregate_id == aggregate_id:
            raise ValueError("cannot apply")

    return handler


class TestScriptedRun:
    def test_conflict_retries_parking_and_backlog_in_the_metrics(
        self, telemetry: Telemetry, new_table: Callable[..., EventStoreSettings], inject: Callable[..., None]
    ) -> None:
        """A conflict, a contention retry, a throttle, a parked stream and an undispatched outbox, counted."""
        store = DynamoDBEventStore(new_table(retry_base_delay_ms=1))
        store.ensure_table()
        a, b, c = (f"o-{uuid.uuid4().hex[:8]}" for _ in range(3))
        assert store.append(a, "Order", [OrderPlaced(1)], 0).success
        assert store.append(a, "Order", [OrderPlaced(2)], 0).conflict
        inject(store, "TransactWriteItems", "TransactionCanceledException", reasons=["TransactionConflict"])
        assert store.append(b, "Order", [OrderPlaced(3), OrderPlaced(4)], 0).success
        inject(store, "TransactWriteItems", "ProvisionedThroughputExceededException")
        assert store.append(c, "Order", [OrderPlaced(5)], 0).success
        changes = [Change.stored(event) for oid in (a, b, c) for event in store.load(oid, "Order")]
        projection = Projection("orders", fail_on(b), InMemoryCheckpointStore(), store, max_attempts=1)
        assert projection.handle(changes).parked == (f"Order:{b}",)
        report = OutboxDispatcher(store, refuse, max_attempts=1).dispatch_once()
        assert (report.published, report.failed) == (0, 3)

        assert telemetry.value("dynamo_es.appends", outcome="ok") == 3
        assert telemetry.value("dynamo_es.appends", outcome="conflict") == 1
        assert telemetry.value("dynamo_es.conflicts") == 1
        assert telemetry.value("dynamo_es.retries") == 2
        assert telemetry.value("dynamo_es.retries", reason="TransactionConflict") == 1
        assert telemetry.value("dynamo_es.throttles") == 1
        assert telemetry.value("dynamo_es.throttles", reason="ProvisionedThroughputExceededException") == 1
        assert telemetry.histogram("dynamo_es.append.events", kind="append") == (3, 4)
        assert telemetry.histogram("dynamo_es.load.events") == (3, 4)
        assert telemetry.value("dynamo_es.projection.events", projection="orders", outcome="applied") == 2
        assert telemetry.value("dynamo_es.projection.events", projection="orders", outcome="failed") == 1
        assert telemetry.value("dynamo_es.projection.events", projection="orders", outcome="skipped") == 1
        assert telemetry.value("dynamo_es.projection.parked", projection="orders") == 1
        (lag,) = telemetry.points("dynamo_es.projection.lag")
        assert 0 <= lag.value < 60
        assert telemetry.value("dynamo_es.outbox.publish_failures") == 3
        assert telemetry.value("dynamo_es.outbox.backlog") == 4
        assert telemetry.points("dynamo_es.outbox.published") == []

    def test_a_throttle_botocore_retries_itself_is_counted(
        self, telemetry: Telemetry, dynamodb_local: DynamoDBLocal, new_table: Callable[..., EventStoreSettings]
    ) -> None:
        """A throttled Query that botocore sends again by itself counts as a retry and a throttle, on the load's span.

        The proxy answers DynamoDB's ThrottlingException over HTTP, as AWS does under load;
        DynamoDB Local never throttles.
        """
        with FaultProxy(dynamodb_local.endpoint_url) as proxy:
            store = DynamoDBEventStore(attrs.evolve(new_table(), endpoint_url=proxy.endpoint_url))
            store.append("o-1", "Order", [OrderPlaced(1)], 0)
            proxy.inject("Query", "error", code="ThrottlingException")
            assert len(store.load("o-1", "Order")) == 1
        assert telemetry.value("dynamo_es.retries", reason="ThrottlingException", operation="query") == 1
        assert telemetry.value("dynamo_es.throttles", operation="query") == 1
        load = telemetry.span("dynamo_es.load")
        assert load.attributes is not None and load.attributes["dynamo_es.retries"] == 1

    def test_the_backlog_is_counted_at_most_once_a_minute(
        self, telemetry: Telemetry, new_table: Callable[..., EventStoreSettings], watch: Callable[..., Any]
    ) -> None:
        """Two passes of one dispatcher send one COUNT of the outbox index: the gauge costs little on a busy outbox."""
        store = DynamoDBEventStore(new_table())
        store.append("o-1", "Order", [OrderPlaced(1)], 0)
        queries = watch(store, "Query")
        dispatcher = OutboxDispatcher(store, refuse, max_attempts=1)
        dispatcher.dispatch_once()
        dispatcher.dispatch_once()
        assert len([call for call in queries.calls if call.get("Select") == "COUNT"]) == 1
        assert telemetry.value("dynamo_es.outbox.backlog") == 1

    def test_a_dispatcher_counts_no_backlog_without_a_meter_provider(
        self, new_table: Callable[..., EventStoreSettings], watch: Callable[..., object]
    ) -> None:
        """With no meter provider the dispatcher sends no extra count query: the backlog costs nothing unused."""
        store = DynamoDBEventStore(new_table())
        store.append("o-1", "Order", [OrderPlaced(1)], 0)
        queries = watch(store, "Query")
        OutboxDispatcher(store, lambda stored: None).dispatch_once()
        assert not [call for call in queries.calls if call.get("Select") == "COUNT"]  # type: ignore[attr-defined]


class TestLogFields:
    def test_projection_failures_carry_stream_version_projection_and_attempt(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The WARNING of a failure and the ERROR of a parking have the documented extra keys."""
        store = InMemoryEventStore()
        store.append("o-1", "Order", [OrderPlaced(1)], 0)
        changes = [Change.stored(event) for event in store.load("o-1", "Order")]
        projection = Projection("orders", fail_on("o-1"), InMemoryCheckpointStore(), store, max_attempts=2)
        with caplog.at_level(logging.INFO, logger="dynamo_es.projections"):
            projection.handle(changes)
            projection.handle(changes)
        warning, error = (
            r for r in caplog.records if r.name == "dynamo_es.projections" and r.levelno >= logging.WARNING
        )
        for record, attempt in ((warning, 1), (error, 2)):
            assert {key: getattr(record, key) for key in LOG_FIELDS} == {
                "stream_id": "Order:o-1",
                "version": 1,
                "projection": "orders",
                "attempt": attempt,
            }

    def test_outbox_failures_carry_stream_version_and_attempt(self, caplog: pytest.LogCaptureFixture) -> None:
        """The dispatcher's WARNING for a failed publish names the event and the try."""
        store = InMemoryEventStore()
        store.append("o-1", "Order", [OrderPlaced(1)], 0)
        with caplog.at_level(logging.WARNING, logger="dynamo_es.outbox"):
            OutboxDispatcher(store, refuse, max_attempts=2, base_delay=0).dispatch_once()
        records = [r for r in caplog.records if r.name == "dynamo_es.outbox"]
        assert [(r.stream_id, r.version, r.attempt) for r in records] == [("Order:o-1", 1, 1), ("Order:o-1", 1, 2)]  # type: ignore[attr-defined]
