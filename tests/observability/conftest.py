"""The real OpenTelemetry SDK with in-memory exporters, handed to dynamo-es for one test; a small order domain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from dynamo_es import AggregateRoot, applies, event
from dynamo_es.observability import configure

from ..dynamodb.conftest import inject, watch

__all__ = ["inject", "watch"]  # the botocore-boundary fixtures of the DynamoDB tests, used here too


@attrs.define
class Telemetry:
    """What dynamo-es recorded during one test: finished spans and metric points."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer: Tracer

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """The finished spans (named ``name``), in the order they ended."""
        return [span for span in self.exporter.get_finished_spans() if name is None or span.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span named ``name``."""
        (found,) = self.spans(name)
        return found

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` so far (cumulative), empty when it recorded nothing."""
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def value(self, name: str, **attributes: Any) -> float:
        """The sum (counters), count (histograms) or last value (gauges) of ``name`` where ``attributes`` match."""
        total = 0.0
        for point in self.points(name):
            if all(point.attributes.get(key) == value for key, value in attributes.items()):
                total += point.value if hasattr(point, "value") else point.count
        return total

    def histogram(self, name: str, **attributes: Any) -> tuple[int, float]:
        """(count, sum) of histogram ``name`` where ``attributes`` match."""
        points = [p for p in self.points(name) if all(p.attributes.get(k) == v for k, v in attributes.items())]
        return sum(p.count for p in points), sum(p.sum for p in points)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """dynamo-es traced and measured by the SDK, into memory, for this test only."""
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    configure(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Telemetry(exporter, reader, tracer_provider.get_tracer("tests"))
    finally:
        configure()
        tracer_provider.shutdown()
        meter_provider.shutdown()


@event(name="TracedOrderPlaced")
@attrs.frozen
class OrderPlaced:
    amount: int


@event(name="TracedInvoiceRaised")
@attrs.frozen
class InvoiceRaised:
    order_id: str
    amount: int


class Order(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.amount = 0

    @classmethod
    def place(cls, aggregate_id: str, amount: int) -> Order:
        order = cls(aggregate_id)
        order.record(OrderPlaced(amount))
        return order

    @applies(OrderPlaced)
    def _placed(self, event: OrderPlaced) -> None:
        self.amount = event.amount


class Invoice(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.order_id = ""

    @classmethod
    def raise_for(cls, order_id: str, amount: int) -> Invoice:
        invoice = cls(f"inv-{order_id}")
        invoice.record(InvoiceRaised(order_id, amount))
        return invoice

    @applies(InvoiceRaised)
    def _raised(self, event: InvoiceRaised) -> None:
        self.order_id = event.order_id
