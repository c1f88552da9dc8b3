"""A shared table on DynamoDB Local: foreign types, corrupt items and every Lambda shape never halt a read model."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventRegistry,
    EventSerializer,
    EventStoreSettings,
    InMemoryCheckpointStore,
    Projection,
    Selection,
    StoredEvent,
    event,
    handles,
)
from dynamo_es.dynamodb import lambda_handler
from dynamo_es.exceptions import ProjectionError
from dynamo_es.testing import lambda_payload

from .conftest import MakeProjection

pytestmark = pytest.mark.ddblocal

FOREIGN_TYPES = [f"shipping.Event{n}" for n in range(5)]
SHAPES = ["streams", "pipes", "kinesis", "kinesis-unwrapped"]


@event(name="shared-table-tests.Scored")
@attrs.frozen
class Scored:
    points: int


@pytest.fixture
def store(shared_tables: dict[str, EventStoreSettings]) -> DynamoDBEventStore:
    """A store on a stream-enabled table of these tests' own (its foreign and corrupt items stay there)."""
    return DynamoDBEventStore(attrs.evolve(shared_tables["foreign"], streams_poll_interval_ms=50))


def foreign_store(store: DynamoDBEventStore) -> DynamoDBEventStore:
    """Another service on the same table, writing five event types this process has never registered."""
    registry = EventRegistry()
    for name in FOREIGN_TYPES:
        registry.register(attrs.make_class(name.replace(".", "_"), {"ref": attrs.field()}, frozen=True), name=name)
    return DynamoDBEventStore(store.settings, serializer=EventSerializer(registry=registry))


def foreign_event(other: DynamoDBEventStore, n: int) -> Any:
    cls, _ = other.serializer.registry.resolve(FOREIGN_TYPES[n % 5]) or (None, 0)
    assert cls is not None
    return cls(f"ref-{n}")


@attrs.define
class Scores:
    """The read model: versions of Scored seen per stream."""

    seen: dict[str, list[int]] = attrs.field(factory=lambda: defaultdict(list))

    @handles(Scored)
    def scored(self, change: Change) -> None:
        self.seen[change.event.stream_id].append(change.event.version)


@pytest.fixture
def shared(store: DynamoDBEventStore) -> tuple[list[str], list[StoredEvent]]:
    """Our 3 streams of 4 Scored events and 3 foreign streams of 4 foreign events, written interleaved.

    Returns our stream ids and every stored event in write order (ours and foreign).
    """
    other, tag = foreign_store(store), uuid.uuid4().hex[:8]
    written: list[StoredEvent] = []
    for version in range(4):
        for s in range(3):
            store.append(f"{tag}-{s}", "Game", [Scored(version)], version).raise_for_failure()
            written.extend(store.load(f"{tag}-{s}", "Game", from_version=version + 1))
            other.append(f"{tag}-{s}", "Parcel", [foreign_event(other, version * 3 + s)], version).raise_for_failure()
            written.extend(other.load(f"{tag}-{s}", "Parcel", from_version=version + 1))
    return [f"Game:{tag}-{s}" for s in range(3)], written


def all_in_order(model: Scores, ours: list[str]) -> bool:
    return {s: model.seen[s] for s in ours} == {s: [1, 2, 3, 4] for s in ours}


class TestForeignEventTypes:
    def test_run_applies_every_read_event_once_in_order(
        self, make_projection: MakeProjection, store: DynamoDBEventStore, shared: tuple[list[str], Any]
    ) -> None:
        """Projection.run on the table's stream, with 5 unregistered types interleaved: 0 failures, nothing parked."""
        ours, _ = shared
        model, checkpoints = Scores(), DynamoDBCheckpointStore(store.settings)
        name = f"scores-{uuid.uuid4().hex[:8]}"
        make_projection(name, model, checkpoints, store).run(stop_when_idle=True)
        assert all_in_order(model, ours) and checkpoints.parked(name) == {}

    def test_the_foreign_records_are_counted_as_skipped(
        self, make_projection: MakeProjection, store: DynamoDBEventStore, shared: tuple[list[str], Any]
    ) -> None:
        """handle() of the stream's batches: each foreign record is counted unread, none failed."""
        ours, _ = shared
        mine = set(ours) | {s.replace("Game:", "Parcel:") for s in ours}
        changes = [c for batch in store.subscribe_to_changes().batches(stop_when_idle=True) for c in batch]
        changes = [c for c in changes if c.event.stream_id in mine]
        model = Scores()
        outcome = make_projection("count", model, InMemoryCheckpointStore(), store).handle(changes)
        assert all_in_order(model, ours)
        assert (outcome.unread, outcome.failed, outcome.applied) == (12, (), 12)

    def test_a_rebuild_reads_past_them(
        self, make_projection: MakeProjection, store: DynamoDBEventStore, shared: tuple[list[str], Any]
    ) -> None:
        """rebuild() scans the whole shared table: ours applied, the unread count covers the foreign ones."""
        ours, _ = shared
        model = Scores()
        progress = make_projection("rebuild", model, InMemoryCheckpointStore(), store).rebuild(follow=False)
        assert all_in_order(model, ours) and progress.unread >= 12

    def test_a_rebuild_by_aggregate_type_is_filtered_by_dynamodb(
        self, make_projection: MakeProjection, store: DynamoDBEventStore
    ) -> None:
        """A selection of aggregate types becomes a Scan filter: only that type's items reach the projection."""
        kind = f"Arena{uuid.uuid4().hex[:8]}"
        store.append("a", kind, [Scored(1), Scored(2)], 0).raise_for_failure()
        seen: list[str] = []
        projection = make_projection("arena", lambda c: seen.append(c.event.stream_id), InMemoryCheckpointStore(),
                                     store, reads=Selection(aggregate_types=[kind]))  # fmt: skip
        progress = projection.rebuild(follow=False)
        assert seen == [f"{kind}:a"] * 2 and (progress.read, progress.unread) == (2, 0)


def put_corrupt(store: DynamoDBEventStore, stream_id: str) -> None:
    """An event item without its eventData, as a buggy writer might leave one."""
    item = {
        store.settings.partition_key_attribute: {"S": stream_id},
        store.settings.sort_key_attribute: {"N": "1"},
        "eventId": {"S": uuid.uuid4().hex},
        "aggregateId": {"S": stream_id.partition(":")[2]},
        "aggregateType": {"S": stream_id.partition(":")[0]},
        "eventType": {"S": "shared-table-tests.Scored"},
        "version": {"N": "1"},
        "timestamp": {"S": "2026-01-01T00:00:00+00:00"},
    }
    store.connection.client.put_item(TableName=store.settings.events_table_name, Item=item)


class TestUndecodableRecords:
    def test_a_corrupt_item_and_an_unregistered_type_park_only_their_aggregates(
        self, make_projection: MakeProjection, store: DynamoDBEventStore
    ) -> None:
        """Within the selection (one aggregate type) both bad streams are parked with their cause; the good one ends."""
        kind = f"Board{uuid.uuid4().hex[:8]}"
        store.append("good", kind, [Scored(1), Scored(2)], 0).raise_for_failure()
        put_corrupt(store, f"{kind}:corrupt")
        foreign_store(store).append("unknown", kind, [foreign_event(foreign_store(store), 0)], 0).raise_for_failure()
        seen: list[str] = []
        checkpoints = DynamoDBCheckpointStore(store.settings)
        name = f"boards-{uuid.uuid4().hex[:8]}"
        projection = make_projection(name, lambda c: seen.append(c.event.stream_id), checkpoints, store,
                                     reads=Selection(aggregate_types=[kind]), max_attempts=1)  # fmt: skip
        projection.run(stop_when_idle=True)
        parked = checkpoints.parked(name)
        assert set(parked) == {f"{kind}:corrupt", f"{kind}:unknown"} and seen == [f"{kind}:good"] * 2
        assert "CorruptItemError" in (parked[f"{kind}:corrupt"].error or "")
        assert "UnknownEventTypeError" in (parked[f"{kind}:unknown"].error or "")


def handler_for(store: DynamoDBEventStore, model: Any, **options: Any) -> Callable[[Any, Any], Any]:
    return lambda_handler(Projection(f"lambda-{uuid.uuid4().hex[:6]}", model, InMemoryCheckpointStore(), store,
                                     **options))  # fmt: skip


class TestLambda:
    @pytest.mark.parametrize("shape", SHAPES)
    def test_every_shape_applies_ours_and_skips_the_foreign(
        self, store: DynamoDBEventStore, shared: tuple[list[str], list[StoredEvent]], shape: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:  # fmt: skip
        """Streams, Pipes, Kinesis and unwrapped Kinesis payloads: no failure, and the log counts the unread."""
        ours, written = shared
        model = Scores()
        payload = lambda_payload(written, shape=shape, settings=store.settings)
        with caplog.at_level(logging.INFO, logger="dynamo_es.projections"):
            assert handler_for(store, model)(payload, None) == {"batchItemFailures": []}
        assert all_in_order(model, ours)
        assert "12 applied, 12 skipped (12 not read)" in caplog.text

    def test_a_corrupt_record_is_reported_in_the_partial_batch_response(self, store: DynamoDBEventStore) -> None:
        """Below max_attempts, Lambda is asked to deliver the corrupt record again; the good stream is applied."""
        kind = f"Board{uuid.uuid4().hex[:8]}"
        store.append("good", kind, [Scored(1)], 0).raise_for_failure()
        put_corrupt(store, f"{kind}:corrupt")
        raw = store.connection.client.get_item(
            TableName=store.settings.events_table_name,
            Key={"pk": {"S": f"{kind}:corrupt"}, "sk": {"N": "1"}},
            ConsistentRead=True,
        )["Item"]
        payload = lambda_payload([raw, *store.load("good", kind)], settings=store.settings)
        seen: list[str] = []
        response = handler_for(store, lambda c: seen.append(c.event.stream_id), reads=[Scored])(payload, None)
        assert response == {
            "batchItemFailures": [{"itemIdentifier": payload["Records"][0]["dynamodb"]["SequenceNumber"]}]
        }
        assert seen == [f"{kind}:good"]

    def test_unwrapped_records_with_a_failure_fail_the_invocation(self, store: DynamoDBEventStore) -> None:
        """Unwrapped Kinesis records have no sequence number to report: the first failure is raised instead."""
        kind = f"Board{uuid.uuid4().hex[:8]}"
        store.append("one", kind, [Scored(1)], 0).raise_for_failure()

        def broken(change: Change) -> None:
            raise RuntimeError("read model down")

        payload = lambda_payload(store.load("one", kind), shape="kinesis-unwrapped", settings=store.settings)
        with pytest.raises(ProjectionError) as caught:
            handler_for(store, broken)(payload, None)
        assert isinstance(caught.value.__cause__, RuntimeError)
