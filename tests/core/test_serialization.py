"""The cattrs converter and the event codec: types, metadata, upcasting, corrupt data."""

from __future__ import annotations

import base64
import enum
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest

from dynamo_es import EventMetadata, EventRegistry, EventSerializer, NewEvent, event, make_converter
from dynamo_es.core.serialization import EncodedEvent
from dynamo_es.exceptions import SerializationError, UnknownEventTypeError

registry = EventRegistry()


class Currency(enum.Enum):
    EUR = "EUR"
    USD = "USD"


@attrs.frozen
class Money:
    amount: Decimal
    currency: Currency


@event(registry=registry)
@attrs.frozen
class Everything:
    when: datetime
    ref: uuid.UUID
    price: Money
    tags: list[str]
    counts: dict[str, int]
    note: str | None = None


@event(name="Renamed", version=2, registry=registry)
@attrs.frozen
class PriceSet:
    amount: Decimal
    currency: str


registry.add_upcaster("Renamed", 1, lambda d: {"amount": d["price"], "currency": "EUR"})


class Point:
    """A user type that cattrs does not know."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


@pytest.fixture
def serializer() -> EventSerializer:
    return EventSerializer(registry=registry)


def encode(serializer: EventSerializer, item: object, **metadata: object) -> EncodedEvent:
    envelope = NewEvent(item, metadata=EventMetadata(**metadata))  # type: ignore[arg-type]
    return serializer.encode(envelope, aggregate_type="Acc", aggregate_id="1", version=7)


def sample() -> Everything:
    return Everything(
        when=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        ref=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        price=Money(Decimal("10.10"), Currency.EUR),
        tags=["a", "b"],
        counts={"x": 1},
    )


class TestRoundTrip:
    def test_common_types_round_trip(self, serializer: EventSerializer) -> None:
        """datetime, UUID, Decimal, Enum, nested attrs, lists, dicts and optionals survive."""
        original = sample()
        assert serializer.decode(encode(serializer, original)).event == original

    def test_event_data_is_base64_of_utf8_json(self, serializer: EventSerializer) -> None:
        """EventData holds Base64 of compact JSON, with readable values."""
        record = encode(serializer, sample())
        document = json.loads(base64.b64decode(record.event_data))
        assert document["when"] == "2024-01-02T03:04:05+00:00"
        assert document["price"] == {"amount": "10.10", "currency": "EUR"}
        assert document["ref"] == "12345678-1234-5678-1234-567812345678"

    def test_metadata_is_json_with_first_class_ids(self, serializer: EventSerializer) -> None:
        """Correlation and causation ids are named keys; user keys sit beside them."""
        record = encode(serializer, sample(), correlation_id="c", causation_id="k", extra={"user": "ada"})
        assert json.loads(record.metadata) == {
            "schemaVersion": 1,
            "correlationId": "c",
            "causationId": "k",
            "user": "ada",
        }
        decoded = serializer.decode(record).metadata
        assert decoded == EventMetadata(correlation_id="c", causation_id="k", extra={"user": "ada"})

    def test_reserved_metadata_keys_are_refused(self, serializer: EventSerializer) -> None:
        """User metadata cannot shadow the library's own keys."""
        with pytest.raises(SerializationError, match="reserved"):
            encode(serializer, sample(), extra={"schemaVersion": 9})

    def test_user_hooks_on_the_converter(self) -> None:
        """A hook registered on the converter serializes a user type."""
        local = EventRegistry()

        @event(registry=local)
        @attrs.frozen
        class Moved:
            to: Point

        converter = make_converter()
        converter.register_unstructure_hook(Point, lambda p: [p.x, p.y])
        converter.register_structure_hook(Point, lambda v, _: Point(*v))
        codec = EventSerializer(converter, registry=local)
        moved = codec.decode(encode(codec, Moved(Point(1, 2)))).event
        assert (moved.to.x, moved.to.y) == (1, 2)

    def test_naive_datetimes_are_taken_as_utc(self, serializer: EventSerializer) -> None:
        """A naive datetime is stored and read back as UTC."""
        original = attrs.evolve(sample(), when=datetime(2024, 1, 2, 3, 4, 5))
        assert serializer.decode(encode(serializer, original)).event.when == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


class TestUpcasting:
    def test_old_schema_is_upcast_to_the_current_class(self, serializer: EventSerializer) -> None:
        """A version-1 record decodes through the upcaster into the version-2 class."""
        old = EncodedEvent(
            stream_id="Acc:1",
            aggregate_id="1",
            aggregate_type="Acc",
            version=1,
            event_id="e",
            event_type="Renamed",
            timestamp="2020-01-01T00:00:00+00:00",
            event_data=base64.b64encode(b'{"price":"5"}').decode(),
            metadata='{"schemaVersion":1}',
        )
        assert serializer.decode(old).event == PriceSet(Decimal("5"), "EUR")

    def test_newer_schema_than_the_class_is_an_error(self, serializer: EventSerializer) -> None:
        """A record written by a newer class version is refused, not misread."""
        record = attrs.evolve(encode(serializer, PriceSet(Decimal(1), "EUR")), metadata='{"schemaVersion":3}')
        with pytest.raises(SerializationError, match="newer"):
            serializer.decode(record)


class TestCorruptData:
    def corrupt(self, serializer: EventSerializer, **changes: str) -> EncodedEvent:
        return attrs.evolve(encode(serializer, sample()), **changes)

    def test_unknown_type_names_stream_version_and_type(self, serializer: EventSerializer) -> None:
        """An unregistered eventType raises UnknownEventTypeError with its location."""
        with pytest.raises(UnknownEventTypeError) as caught:
            serializer.decode(self.corrupt(serializer, event_type="Vanished"))
        assert (caught.value.stream_id, caught.value.version, caught.value.event_type) == (
            "Acc:1",
            7,
            "Vanished",
        )

    @pytest.mark.parametrize(
        "changes",
        [
            {"event_data": "***not base64***"},
            {"event_data": base64.b64encode(b"{not json").decode()},
            {"event_data": base64.b64encode(b'{"tags": []}').decode()},
            {"metadata": "[1, 2]"},
            {"metadata": "{broken"},
            {"timestamp": "yesterday"},
        ],
        ids=[
            "base64",
            "json",
            "missing-fields",
            "metadata-not-object",
            "metadata-json",
            "timestamp",
        ],
    )
    def test_corrupt_records_raise_serialization_error(
        self, serializer: EventSerializer, changes: dict[str, str]
    ) -> None:
        """Bad Base64, JSON, fields, metadata or timestamp raise SerializationError naming the event."""
        with pytest.raises(SerializationError) as caught:
            serializer.decode(self.corrupt(serializer, **changes))
        assert "Acc:1 version 7 (Everything)" in str(caught.value)
        assert caught.value.__cause__ is not None

    def test_unserializable_value_names_the_event(self, serializer: EventSerializer) -> None:
        """An event value JSON cannot hold raises SerializationError at encode time."""
        with pytest.raises(SerializationError, match="Acc:1 version 7"):
            encode(serializer, attrs.evolve(sample(), counts={"x": object()}))  # type: ignore[dict-item]


class TestDecodeAll:
    def test_a_batch_decodes_as_one_by_one(self, serializer: EventSerializer) -> None:
        """Mixed types, metadata, timestamps and an upcast: decode_all gives what decode() gives, in order."""
        records = [
            encode(serializer, sample(), correlation_id="c1"),
            encode(serializer, PriceSet(Decimal("2.5"), "USD"), correlation_id="c1"),
            attrs.evolve(encode(serializer, sample()), timestamp="2021-06-01T10:00:00"),
            EncodedEvent(
                stream_id="Acc:1",
                aggregate_id="1",
                aggregate_type="Acc",
                version=8,
                event_id="old",
                event_type="Renamed",
                timestamp="2020-01-01T00:00:00+00:00",
                event_data=base64.b64encode(b'{"price":"5"}').decode(),
                metadata='{"schemaVersion":1}',
            ),
            encode(serializer, PriceSet(Decimal(1), "EUR"), correlation_id="c2"),
        ]
        assert serializer.decode_all(records) == [serializer.decode(record) for record in records]

    @pytest.mark.parametrize(
        "changes",
        [
            {"event_data": "***not base64***"},
            {"event_data": base64.b64encode(b"{not json").decode()},
            {"event_data": base64.b64encode(b'{"tags": []}').decode()},
            {"event_data": base64.b64encode(b'{"tags": []} {}').decode()},
            {"event_data": base64.b64encode(b'{"tags": []}, {}').decode()},
            {"event_data": base64.b64encode(b"[1]").decode()},
            {"event_data": base64.b64encode(b'{"tags": ["\xff"]}').decode()},
            {"metadata": "{broken"},
            {"timestamp": "yesterday"},
            {"event_type": "Vanished"},
        ],
        ids=[
            "base64",
            "json",
            "missing-fields",
            "extra-data",
            "two-documents",
            "not-an-object",
            "not-utf-8",
            "metadata-json",
            "timestamp",
            "unknown-type",
        ],
    )
    def test_a_corrupt_record_in_a_batch_raises_what_decode_raises(
        self, serializer: EventSerializer, changes: dict[str, str]
    ) -> None:
        """After good records, a corrupt one raises decode()'s own error, naming that event."""
        good = encode(serializer, sample())
        bad = attrs.evolve(encode(serializer, sample()), **changes)
        with pytest.raises(SerializationError) as alone:
            serializer.decode(bad)
        with pytest.raises(SerializationError) as batch:
            serializer.decode_all([good, bad])
        assert type(batch.value) is type(alone.value) and str(batch.value) == str(alone.value)

    def test_two_records_that_join_into_one_document_are_each_refused(self, serializer: EventSerializer) -> None:
        """Halves of one object in two records parse as one array element: the count differs, each fails alone."""
        whole = base64.b64decode(encode(serializer, sample()).event_data).decode()
        cut = whole.index(",")
        halves = [whole[:cut], whole[cut + 1 :]]
        records = [
            attrs.evolve(encode(serializer, sample()), event_data=base64.b64encode(half.encode()).decode())
            for half in halves
        ]
        with pytest.raises(SerializationError, match="Acc:1"):
            serializer.decode_all(records)
        with pytest.raises(SerializationError, match="Acc:1"):
            serializer.decode_events(records)


class TestDecodeEvents:
    def test_the_events_are_those_of_decode(self, serializer: EventSerializer) -> None:
        """Mixed types, metadata and an upcast: decode_events gives each decode(record).event, in order."""
        records = [
            encode(serializer, sample(), correlation_id="c1"),
            encode(serializer, PriceSet(Decimal("2.5"), "USD"), correlation_id="c1"),
            EncodedEvent(
                stream_id="Acc:1",
                aggregate_id="1",
                aggregate_type="Acc",
                version=8,
                event_id="old",
                event_type="Renamed",
                timestamp="2020-01-01T00:00:00+00:00",
                event_data=base64.b64encode(b'{"price":"5"}').decode(),
                metadata='{"schemaVersion":1}',
            ),
            encode(serializer, PriceSet(Decimal(1), "EUR"), correlation_id="c2"),
        ]
        assert serializer.decode_events(records) == [serializer.decode(record).event for record in records]

    @pytest.mark.parametrize(
        "changes",
        [
            {"event_data": base64.b64encode(b"{not json").decode()},
            {"event_data": base64.b64encode(b'{"tags": []}, {}').decode()},
            {"metadata": "{broken"},
            {"event_type": "Vanished"},
        ],
        ids=["json", "two-documents", "metadata-json", "unknown-type"],
    )
    def test_a_corrupt_record_raises_what_decode_raises(
        self, serializer: EventSerializer, changes: dict[str, str]
    ) -> None:
        """A corrupt payload, metadata or type raises decode()'s own error, naming that event."""
        bad = attrs.evolve(encode(serializer, sample()), **changes)
        with pytest.raises(SerializationError) as alone:
            serializer.decode(bad)
        with pytest.raises(SerializationError) as batch:
            serializer.decode_events([encode(serializer, sample()), bad])
        assert type(batch.value) is type(alone.value) and str(batch.value) == str(alone.value)

    def test_a_batch_of_one_type_with_an_odd_document_decodes_as_one_by_one(self, serializer: EventSerializer) -> None:
        """A run of one event type, one of them stored with a value cattrs must convert: each as decode() gives it."""
        records = [encode(serializer, PriceSet(Decimal(n), "EUR")) for n in range(3)]
        odd = base64.b64encode(b'{"amount":"7","currency":5}').decode()
        records[1] = attrs.evolve(records[1], event_data=odd)
        assert serializer.decode_events(records) == [serializer.decode(record).event for record in records]

    def test_the_timestamp_is_not_read(self, serializer: EventSerializer) -> None:
        """A replay needs no timestamp: a corrupt one does not stop the events (load still refuses it)."""
        record = attrs.evolve(encode(serializer, sample()), timestamp="yesterday")
        assert serializer.decode_events([record]) == [sample()]

    def test_a_serializer_that_decodes_payloads_its_own_way_is_used(self, serializer: EventSerializer) -> None:
        """A subclass overriding _decode_payload gets its own decode for each event."""

        @attrs.frozen
        class Marking(EventSerializer):
            def _decode_payload(self, encoded: EncodedEvent, schema_version: int) -> object:
                return ("decoded", encoded.version)

        marking = Marking(registry=serializer.registry)
        assert marking.decode_events([encode(serializer, sample())]) == [("decoded", 7)]
