"""One trace from a command through a process manager to a second aggregate and a read model (DynamoDB Local)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import attrs
import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    InMemoryEventStore,
    OutboxDispatcher,
    Projection,
    Repository,
    StoredEvent,
    UnitOfWork,
    process_manager,
)
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncOutboxDispatcher, AsyncProjection, AsyncRepository
from dynamo_es.dynamodb import lambda_handler
from dynamo_es.exceptions import ConfigurationError, ProjectionError
from dynamo_es.testing import lambda_payload

from ..dynamodb.conftest import capture_records, lambda_record
from .conftest import Invoice, InvoiceRaised, Order, OrderPlaced, Telemetry

pytestmark = pytest.mark.ddblocal


@attrs.frozen
class LambdaContext:
    """The two attributes of AWS Lambda's context object that the invocation span reads."""

    aws_request_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:invoicing"


@pytest.fixture
def store(streams_table: EventStoreSettings) -> DynamoDBEventStore:
    return DynamoDBEventStore(attrs.evolve(streams_table, streams_poll_interval_ms=50))


def invoicing(order_ids: set[str]) -> Callable[[Change, UnitOfWork], None]:
    """The process manager's policy: an invoice for each placed order of ``order_ids``."""

    def policy(change: Change, unit: UnitOfWork) -> None:
        placed = change.event
        if placed.aggregate_id in order_ids:
            unit.add(Invoice.raise_for(placed.aggregate_id, placed.event.amount))

    return policy


@attrs.define
class Invoices:
    """The read model: invoice amounts by invoice id."""

    amounts: dict[str, int] = attrs.field(factory=dict)

    def __call__(self, change: Change) -> None:
        self.amounts[change.event.aggregate_id] = change.event.event.amount


def of_stream(spans: list[ReadableSpan], stream_id: str) -> ReadableSpan:
    (found,) = [span for span in spans if span.attributes and span.attributes.get("dynamo_es.stream_id") == stream_id]
    return found


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def assert_one_trace(telemetry: Telemetry, order_id: str, invoices: Invoices) -> dict[str, ReadableSpan]:
    """The command, its append, the reaction, its commit and the read model's handling: a chain in one trace."""
    assert invoices.amounts == {f"inv-{order_id}": 7}
    chain = {
        "command": telemetry.span("place order"),
        "append": of_stream(telemetry.spans("dynamo_es.append"), f"Order:{order_id}"),
        "react": of_stream(telemetry.spans("dynamo_es.react"), f"Order:{order_id}"),
        "commit": next(
            span
            for span in telemetry.spans("dynamo_es.commit")
            if span.attributes and f"Invoice:inv-{order_id}" in span.attributes["dynamo_es.stream_ids"]
        ),
        "handle": of_stream(telemetry.spans("dynamo_es.handle"), f"Invoice:inv-{order_id}"),
    }
    assert {span.context.trace_id for span in chain.values()} == {chain["command"].context.trace_id}
    names = list(chain)
    for child, parent in zip(names[1:], names, strict=False):
        assert parent_id(chain[child]) == chain[parent].context.span_id, f"{child} is not a child of {parent}"
    for consumer in ("react", "handle"):
        span = chain[consumer]
        assert span.kind is SpanKind.CONSUMER
        batches = {batch.context.span_id for batch in telemetry.spans("dynamo_es.batch")}
        assert [link.context.span_id for link in span.links if link.context.span_id in batches], consumer
    return chain


class TestOneTrace:
    def test_through_the_streams_subscription(self, telemetry: Telemetry, store: DynamoDBEventStore) -> None:
        """Command -> OrderPlaced -> process manager (Streams) -> InvoiceRaised -> read model (Streams): one trace."""
        order_id = f"o-{uuid.uuid4().hex[:12]}"
        with telemetry.tracer.start_as_current_span("place order"):
            Repository(Order, store).save(Order.place(order_id, 7))
        suffix = uuid.uuid4().hex[:8]
        process_manager(f"invoicing-{suffix}", invoicing({order_id}), store, reads=[OrderPlaced]).run(
            stop_when_idle=True
        )
        invoices = Invoices()
        checkpoints = DynamoDBCheckpointStore(store.settings)
        Projection(f"invoices-{suffix}", invoices, checkpoints, store, reads=[InvoiceRaised]).run(stop_when_idle=True)
        assert_one_trace(telemetry, order_id, invoices)

    def test_through_lambda_handler(self, telemetry: Telemetry, store: DynamoDBEventStore) -> None:
        """The same chain when each consumer is a Lambda function fed the records DynamoDB Streams gave."""
        order_id = f"o-{uuid.uuid4().hex[:12]}"

        def place() -> None:
            with telemetry.tracer.start_as_current_span("place order"):
                Repository(Order, store).save(Order.place(order_id, 7))

        suffix = uuid.uuid4().hex[:8]
        manager = process_manager(f"invoicing-{suffix}", invoicing({order_id}), store, reads=[OrderPlaced])
        react = lambda_handler(manager)
        order_records = capture_records(store, place)
        invoice_records = capture_records(
            store, lambda: react({"Records": [lambda_record(r) for r in order_records]}, LambdaContext())
        )
        invoices, checkpoints = Invoices(), InMemoryCheckpointStore()
        project = lambda_handler(Projection(f"invoices-{suffix}", invoices, checkpoints, store, reads=[InvoiceRaised]))
        context = LambdaContext()
        assert project({"Records": [lambda_record(r) for r in invoice_records]}, context) == {"batchItemFailures": []}
        chain = assert_one_trace(telemetry, order_id, invoices)
        invocation = next(
            span
            for span in telemetry.spans("dynamo_es.lambda")
            if span.attributes and span.attributes["faas.invocation_id"] == context.aws_request_id
        )
        assert invocation.attributes is not None
        assert invocation.attributes["cloud.resource_id"] == context.invoked_function_arn
        assert [link.context.span_id for link in invocation.links] == [chain["commit"].context.span_id]
        react_invocation = chain["react"].links  # the process manager's handling links to its own batch
        assert react_invocation
        batches = telemetry.spans("dynamo_es.batch")
        batch = next(span for span in batches if parent_id(span) == invocation.context.span_id)
        assert [link.context.span_id for link in chain["handle"].links] == [batch.context.span_id]
        assert telemetry.points("dynamo_es.projection.iterator_age")


class TestConsumerSpans:
    def test_a_failing_handler_fails_its_span_and_counts_in_the_batch(self, telemetry: Telemetry) -> None:
        """A handler error ends its dynamo_es.handle span in ERROR; the batch span counts applied and failed."""
        store = InMemoryEventStore()
        for order_id in ("good", "bad"):
            Repository(Order, store).save(Order.place(order_id, 1))
        changes = [Change.stored(e) for oid in ("good", "bad") for e in store.load(oid, "Order")]

        def handler(change: Change) -> None:
            if change.event.aggregate_id == "bad":
                raise ValueError("no")

        outcome = Projection("orders", handler, InMemoryCheckpointStore(), store).handle(changes)
        assert outcome.applied == 1
        assert outcome.newest_applied == changes[0].event.timestamp  # the good one; the failed one is not applied
        failed = of_stream(telemetry.spans("dynamo_es.handle"), "Order:bad")
        assert failed.status.status_code is StatusCode.ERROR
        assert [event.attributes["exception.type"] for event in failed.events if event.attributes] == ["ValueError"]
        batch = telemetry.span("dynamo_es.batch")
        assert batch.attributes is not None
        assert (batch.attributes["dynamo_es.applied"], batch.attributes["dynamo_es.failed"]) == (1, 1)
        assert batch.attributes["messaging.batch.message_count"] == 2

    def test_an_outbox_publish_continues_the_trace_of_its_event(self, telemetry: Telemetry) -> None:
        """dynamo_es.publish is a PRODUCER span, a child of the append that wrote the event."""
        store = InMemoryEventStore()
        with telemetry.tracer.start_as_current_span("place order") as command:
            Repository(Order, store).save(Order.place("o-1", 3))
        published: list[StoredEvent] = []
        assert OutboxDispatcher(store, published.append).dispatch_once().published == 1
        publish = telemetry.span("dynamo_es.publish")
        assert publish.kind is SpanKind.PRODUCER
        assert publish.context.trace_id == command.get_span_context().trace_id
        assert publish.attributes is not None and publish.attributes["messaging.message.id"] == published[0].event_id
        assert publish.attributes["dynamo_es.published"] is True

    def test_the_async_runners_continue_the_trace(self, telemetry: Telemetry) -> None:
        """AsyncProjection and AsyncOutboxDispatcher (the asyncio step driver) make the same consumer spans."""

        async def work() -> None:
            store = AsyncInMemoryEventStore()
            with telemetry.tracer.start_as_current_span("place order"):
                await AsyncRepository(Order, store).save(Order.place("o-1", 3))
            changes = [Change.stored(event) for event in await store.load("o-1", "Order")]
            seen: list[Change] = []

            async def handler(change: Change) -> None:
                seen.append(change)

            await AsyncProjection("orders", handler, InMemoryCheckpointStore(), store).handle(changes)
            await AsyncOutboxDispatcher(store, handler).dispatch_once()
            assert len(seen) == 2

        asyncio.run(work())
        command = telemetry.span("place order")
        for name in ("dynamo_es.handle", "dynamo_es.publish"):
            span = telemetry.span(name)
            assert span.context.trace_id == command.context.trace_id, name
        batch = telemetry.span("dynamo_es.batch")
        assert [link.context.span_id for link in telemetry.span("dynamo_es.handle").links] == [batch.context.span_id]

    def test_a_handler_keeps_the_callers_baggage(self, telemetry: Telemetry) -> None:
        """Continuing an event's trace keeps the rest of the caller's context (its baggage)."""
        store = InMemoryEventStore()
        with telemetry.tracer.start_as_current_span("place order"):
            Repository(Order, store).save(Order.place("o-1", 3))
        seen: list[object] = []
        projection = Projection(
            "orders", lambda change: seen.append(baggage.get_baggage("tenant")), InMemoryCheckpointStore(), store
        )
        token = context.attach(baggage.set_baggage("tenant", "t-1"))
        try:
            projection.handle([Change.stored(event) for event in store.load("o-1", "Order")])
        finally:
            context.detach(token)
        assert seen == ["t-1"]
        assert telemetry.span("dynamo_es.handle").context.trace_id == telemetry.span("place order").context.trace_id

    def test_a_lambda_invocation_that_raises_ends_its_span_in_error(self, telemetry: Telemetry) -> None:
        """Unwrapped Kinesis records cannot be reported: the handler raises, and the invocation span says ERROR."""
        store = InMemoryEventStore()
        Repository(Order, store).save(Order.place("o-1", 3))

        def handler(change: Change) -> None:
            raise ValueError("no")

        handle = lambda_handler(Projection("orders", handler, InMemoryCheckpointStore(), store))
        with pytest.raises(ProjectionError):
            handle(lambda_payload(store.load("o-1", "Order"), shape="kinesis-unwrapped"), LambdaContext())
        assert telemetry.span("dynamo_es.lambda").status.status_code is StatusCode.ERROR

    def test_a_bad_emf_namespace_is_refused(self) -> None:
        """An EMF namespace CloudWatch would drop in silence is a ConfigurationError when the handler is made."""
        projection = Projection("orders", lambda change: None, InMemoryCheckpointStore(), InMemoryEventStore())
        for bad in ("", " ", "x" * 256, 123):
            with pytest.raises(ConfigurationError):
                lambda_handler(projection, emf_namespace=bad)  # type: ignore[arg-type]

    def test_lambda_emf_line(self, telemetry: Telemetry, capsys: pytest.CaptureFixture[str]) -> None:
        """lambda_handler(emf_namespace=) prints one CloudWatch EMF line per invocation, by projection."""
        store = InMemoryEventStore()
        Repository(Order, store).save(Order.place("o-1", 3))
        (stored,) = store.load("o-1", "Order")
        projection = Projection("orders", lambda change: None, InMemoryCheckpointStore(), store)
        assert lambda_handler(projection, emf_namespace="Shop")(lambda_payload([stored]), None) == {
            "batchItemFailures": []
        }
        document = json.loads(capsys.readouterr().out)
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert (directive["Namespace"], directive["Dimensions"]) == ("Shop", [["Projection"]])
        assert {metric["Name"] for metric in directive["Metrics"]} >= {"EventsApplied", "EventsFailed", "Lag"}
        assert (document["Projection"], document["EventsApplied"], document["EventsFailed"]) == ("orders", 1, 0)
        assert document["IteratorAge"] >= 0
