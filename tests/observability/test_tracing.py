"""The spans of the DynamoDB stores, and the trace context they keep in event metadata (real SDK, DynamoDB Local)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from dynamo_es import (
    DynamoDBEventStore,
    EventMetadata,
    EventStoreSettings,
    NewEvent,
    Repository,
    StreamAppend,
    Tracking,
    UnitOfWork,
)
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.exceptions import EventStoreError, InvalidStreamError, SerializationError
from dynamo_es.observability import current_traceparent

from .conftest import Invoice, Order, OrderPlaced, Telemetry

pytestmark = pytest.mark.ddblocal


def new_id() -> str:
    return f"o-{uuid.uuid4().hex[:12]}"


def traceparent_of(span: object) -> str:
    """The W3C traceparent naming ``span`` (version 00, sampled)."""
    context = span.get_span_context()  # type: ignore[attr-defined]
    return f"00-{format_trace_id(context.trace_id)}-{format_span_id(context.span_id)}-"


class TestAppend:
    def test_an_append_is_a_client_span_with_dynamodb_attributes(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """append() records dynamo_es.append: CLIENT, db.system, the table, the stream, versions and event count."""
        order_id = new_id()
        dynamodb_store.append(order_id, "Order", [OrderPlaced(1), OrderPlaced(2)], 0)
        span = telemetry.span("dynamo_es.append")
        assert span.kind is SpanKind.CLIENT
        assert span.attributes is not None
        assert dict(span.attributes) == {
            "db.system": "dynamodb",
            "db.operation": "TransactWriteItems",
            "aws.dynamodb.table_names": (dynamodb_store.settings.events_table_name,),
            "dynamo_es.stream_id": f"Order:{order_id}",
            "dynamo_es.expected_version": 0,
            "dynamo_es.event_count": 2,
            "dynamo_es.new_version": 2,
            "dynamo_es.conflict": False,
        }

    def test_the_events_keep_the_traceparent_of_their_append(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """Each stored event's metadata names the append span, inside the caller's trace."""
        order_id = new_id()
        with telemetry.tracer.start_as_current_span("place order") as command:
            dynamodb_store.append(order_id, "Order", [OrderPlaced(1)], 0, metadata=EventMetadata(correlation_id="c-1"))
        append = telemetry.span("dynamo_es.append")
        assert append.parent is not None and append.parent.span_id == command.get_span_context().span_id
        (stored,) = dynamodb_store.load(order_id, "Order")
        assert stored.metadata.trace_parent is not None
        assert stored.metadata.trace_parent.startswith(traceparent_of(append))
        assert stored.metadata.correlation_id == "c-1"

    def test_an_envelopes_own_traceparent_wins_over_the_span(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """A NewEvent that names its traceparent keeps it; a plain event of the same append takes the span's."""
        order_id, own = new_id(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        envelope = NewEvent(OrderPlaced(1), metadata=EventMetadata(trace_parent=own))
        with telemetry.tracer.start_as_current_span("import"):
            dynamodb_store.append(order_id, "Order", [envelope, OrderPlaced(2)], 0)
        first, second = dynamodb_store.load(order_id, "Order")
        assert first.metadata.trace_parent == own
        assert second.metadata.trace_parent is not None
        assert second.metadata.trace_parent.startswith(traceparent_of(telemetry.span("dynamo_es.append")))

    def test_events_and_appends_may_be_generators(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """append() and append_many() take iterables read once: the spans count what was encoded."""
        order_id = new_id()
        assert dynamodb_store.append(order_id, "Order", (OrderPlaced(n) for n in range(3)), 0).success
        appends = (StreamAppend(f"{order_id}-{n}", "Order", [OrderPlaced(n)], 0) for n in range(2))
        result = dynamodb_store.append_many(appends)  # type: ignore[arg-type]
        assert result.success and len(result.results) == 2
        assert len(dynamodb_store.load(f"{order_id}-1", "Order")) == 1
        append, commit = telemetry.span("dynamo_es.append"), telemetry.span("dynamo_es.commit")
        assert append.attributes is not None and append.attributes["dynamo_es.event_count"] == 3
        assert commit.attributes is not None and commit.attributes["dynamo_es.event_count"] == 2

    def test_a_traceparent_given_in_metadata_is_kept(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """Metadata that names its own traceparent (a command from another service) keeps it."""
        order_id = new_id()
        given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        dynamodb_store.append(order_id, "Order", [OrderPlaced(1)], 0, metadata=EventMetadata(trace_parent=given))
        assert dynamodb_store.load(order_id, "Order")[0].metadata.trace_parent == given

    def test_a_traceparent_that_is_not_w3c_is_refused(self, dynamodb_store: DynamoDBEventStore) -> None:
        """A malformed traceparent raises SerializationError naming stream and version; nothing is written."""
        order_id = new_id()
        for bad in (
            "garbage",
            "00-" + "0" * 32 + "-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        ):
            with pytest.raises(SerializationError) as raised:
                dynamodb_store.append(order_id, "Order", [OrderPlaced(1)], 0, metadata=EventMetadata(trace_parent=bad))
            assert (raised.value.stream_id, raised.value.version) == (f"Order:{order_id}", 1)
            assert "W3C traceparent" in str(raised.value)
        assert dynamodb_store.load(order_id, "Order") == []

    def test_a_conflict_is_an_attribute_and_a_metric(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """A refused append says dynamo_es.conflict and counts one conflict; the first append counts as ok."""
        order_id = new_id()
        dynamodb_store.append(order_id, "Order", [OrderPlaced(1)], 0)
        assert dynamodb_store.append(order_id, "Order", [OrderPlaced(2)], 0).conflict
        late = telemetry.spans("dynamo_es.append")[-1]
        assert late.attributes is not None and late.attributes["dynamo_es.conflict"] is True
        assert telemetry.value("dynamo_es.conflicts", kind="append") == 1
        assert telemetry.value("dynamo_es.appends", outcome="ok", kind="append") == 1
        assert telemetry.value("dynamo_es.appends", outcome="conflict", kind="append") == 1

    def test_retries_are_counted_in_the_span(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore, inject: Callable[..., None]
    ) -> None:
        """A TransactionConflict sent again is dynamo_es.retries on the span, with an event per retry.

        DynamoDB Local never produces TransactionConflict: it stands for a real concurrent
        transaction on AWS, injected at the botocore boundary.
        """
        dynamodb_store.ensure_table()
        inject(dynamodb_store, "TransactWriteItems", "TransactionCanceledException", reasons=["TransactionConflict"])
        assert dynamodb_store.append(new_id(), "Order", [OrderPlaced(1)], 0).success
        span = telemetry.span("dynamo_es.append")
        assert span.attributes is not None and span.attributes["dynamo_es.retries"] == 1
        assert [(event.name, dict(event.attributes or {})) for event in span.events] == [
            ("dynamo_es.retry", {"reason": "TransactionConflict", "attempt": 1})
        ]

    def test_a_failed_append_says_so_on_its_span(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore, inject: Callable[..., None]
    ) -> None:
        """An append that fails (access denied) is no conflict and counts as no append."""
        dynamodb_store.ensure_table()
        inject(dynamodb_store, "TransactWriteItems", "AccessDeniedException")
        result = dynamodb_store.append(new_id(), "Order", [OrderPlaced(1)], 0)
        assert isinstance(result.error, EventStoreError)
        span = telemetry.span("dynamo_es.append")
        assert span.attributes is not None and span.attributes["dynamo_es.conflict"] is False
        assert span.status.status_code is StatusCode.ERROR
        assert [event.name for event in span.events] == ["exception"]
        assert telemetry.value("dynamo_es.appends", outcome="error") == 1
        assert telemetry.points("dynamo_es.append.events") == []

    def test_bad_input_fails_the_span(self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore) -> None:
        """An append refused before any I/O ends its span in error, with the dynamo-es exception recorded."""
        with pytest.raises(InvalidStreamError):
            dynamodb_store.append("", "Order", [OrderPlaced(1)], 0)
        span = telemetry.span("dynamo_es.append")
        assert span.status.status_code is StatusCode.ERROR
        assert [event.name for event in span.events] == ["exception"]


class TestCommitAndLoad:
    def test_a_unit_of_work_commit_is_one_commit_span(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """UnitOfWork.commit records dynamo_es.commit naming each stream, the events and the tables."""
        order_id = new_id()
        unit = UnitOfWork(dynamodb_store)
        unit.add(Order.place(order_id, 5), Invoice.raise_for(order_id, 5))
        unit.commit()
        span = telemetry.span("dynamo_es.commit")
        assert span.attributes is not None
        assert set(span.attributes["dynamo_es.stream_ids"]) == {f"Order:{order_id}", f"Invoice:inv-{order_id}"}
        assert span.attributes["dynamo_es.event_count"] == 2
        assert span.attributes["aws.dynamodb.table_names"] == (dynamodb_store.settings.events_table_name,)
        assert telemetry.histogram("dynamo_es.append.events", kind="commit") == (1, 2)

    def test_a_redelivered_commit_counts_as_already_processed(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """A commit whose tracking was recorded already wrote nothing: no ok append, no events counted."""
        order_id = new_id()
        tracking = Tracking(f"pm-{order_id}", f"Order:{order_id}", 1)
        for _ in range(2):
            dynamodb_store.append_many([StreamAppend(order_id, "Order", [OrderPlaced(1)], 0)], tracking=tracking)
        assert telemetry.value("dynamo_es.appends", kind="commit", outcome="ok") == 1
        assert telemetry.value("dynamo_es.appends", kind="commit", outcome="already_processed") == 1
        assert telemetry.histogram("dynamo_es.append.events", kind="commit") == (1, 1)
        redelivered = telemetry.spans("dynamo_es.commit")[-1]
        assert redelivered.attributes is not None and redelivered.attributes["dynamo_es.already_processed"] is True

    def test_a_tracked_commit_names_the_checkpoints_table_too(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """append_many with tracking touches both tables, and its span says so."""
        order_id = new_id()
        tracking = Tracking(f"pm-{order_id}", f"Order:{order_id}", 1)
        dynamodb_store.append_many([StreamAppend(order_id, "Order", [OrderPlaced(1)], 0)], tracking=tracking)
        settings = dynamodb_store.settings
        span = telemetry.span("dynamo_es.commit")
        assert span.attributes is not None
        assert span.attributes["aws.dynamodb.table_names"] == (
            settings.events_table_name,
            settings.checkpoints_table_name,
        )

    def test_loads_are_spans_with_their_size(self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore) -> None:
        """load() and a Repository's get() each record dynamo_es.load with the events read, and a load size."""
        order_id = new_id()
        dynamodb_store.append(order_id, "Order", [OrderPlaced(n) for n in range(3)], 0)
        dynamodb_store.load(order_id, "Order", from_version=2)
        assert Repository(Order, dynamodb_store).get(order_id).amount == 2
        first, second = telemetry.spans("dynamo_es.load")
        assert first.attributes is not None and second.attributes is not None
        assert (first.attributes["dynamo_es.from_version"], first.attributes["dynamo_es.event_count"]) == (2, 2)
        assert second.attributes["dynamo_es.event_count"] == 3
        assert first.attributes["aws.dynamodb.consistent_read"] is True
        assert telemetry.histogram("dynamo_es.load.events") == (2, 5)

    def test_a_table_check_is_a_span(self, telemetry: Telemetry, new_table: Callable[..., EventStoreSettings]) -> None:
        """The first use of a store checks its table once, in a dynamo_es.check_table span inside the operation's."""
        store = DynamoDBEventStore(new_table())
        store.load(new_id(), "Order")
        store.append(new_id(), "Order", [OrderPlaced(1)], 0)
        check = telemetry.span("dynamo_es.check_table")
        assert check.attributes is not None
        assert check.attributes["aws.dynamodb.table_names"] == (store.settings.events_table_name,)
        assert check.parent is not None and check.parent.span_id == telemetry.span("dynamo_es.load").context.span_id

    def test_the_async_store_records_the_same_spans(
        self, telemetry: Telemetry, dynamodb_store: DynamoDBEventStore
    ) -> None:
        """The async store (one source with the sync one) traces append and load, in the caller's trace."""
        order_id = new_id()

        async def work() -> None:
            async with AsyncDynamoDBEventStore(dynamodb_store.settings) as store:
                with telemetry.tracer.start_as_current_span("async command"):
                    await store.append(order_id, "Order", [OrderPlaced(1)], 0)
                    await store.load(order_id, "Order")

        asyncio.run(work())
        command = telemetry.span("async command")
        for name in ("dynamo_es.append", "dynamo_es.load"):
            span = telemetry.span(name)
            assert span.parent is not None and span.parent.span_id == command.context.span_id


class TestWithoutAProvider:
    def test_no_traceparent_without_a_recording_span(self, dynamodb_store: DynamoDBEventStore) -> None:
        """With the API's default (no provider set), events carry no traceparent and metadata is unchanged."""
        order_id = new_id()
        assert current_traceparent() is None
        dynamodb_store.append(order_id, "Order", [OrderPlaced(1)], 0)
        assert dynamodb_store.load(order_id, "Order")[0].metadata == EventMetadata()
