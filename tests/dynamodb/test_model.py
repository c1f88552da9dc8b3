"""The event item schema: one PynamoDB model, and a codec that takes everything from it."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from dynamo_es import EncodedEvent, EventStoreSettings
from dynamo_es.dynamodb import EventItemCodec, event_model
from dynamo_es.exceptions import SerializationError

RECORD = EncodedEvent(
    stream_id="Account:1",
    aggregate_id="1",
    aggregate_type="Account",
    version=7,
    event_id="e-7",
    event_type="Deposited",
    timestamp="2026-01-01T00:00:00+00:00",
    event_data="eyJhbW91bnQiOjF9",
    metadata='{"schemaVersion":1,"note":"café"}',
)


def codec(**settings: Any) -> EventItemCodec:
    return EventItemCodec(event_model(EventStoreSettings(**settings)))


def wire(codec: EventItemCodec, record: EncodedEvent = RECORD) -> dict[str, dict[str, Any]]:
    """The item as PynamoDB itself serializes it: the model is the schema."""
    return codec.to_model(record).serialize()


def value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "N":
        return len(raw) // 2 + 2
    return 1 if kind == "BOOL" else len(raw.encode())


class TestEventItemCodec:
    def test_decodes_what_the_model_serializes(self) -> None:
        """A record written through the model reads back unchanged."""
        events = codec()
        assert events.decode(wire(events)) == RECORD

    def test_key_attribute_names_come_from_the_settings_model(self) -> None:
        """With other key names the codec reads and writes those names, and no others."""
        events = codec(partition_key_attribute="streamId", sort_key_attribute="seq")
        item = wire(events)
        assert {"streamId", "seq"} <= set(item) and not {"pk", "sk"} & set(item)
        assert events.decode(item) == RECORD

    def test_size_is_what_dynamodb_counts_for_the_serialized_item(self) -> None:
        """Names plus values of the item PynamoDB serializes, counted as DynamoDB does."""
        events = codec()
        item = wire(events)
        assert events.size(RECORD) == sum(len(name) + value_size(value) for name, value in item.items())

    def test_model_defaults_fill_optional_attributes(self) -> None:
        """An item without metadata or isDispatched reads with the model's defaults."""
        events = codec()
        item = wire(events)
        del item["metadata"], item["isDispatched"]
        decoded = events.decode(item)
        assert (decoded.metadata, decoded.is_dispatched) == ("{}", False)

    @pytest.mark.parametrize("attribute", ["eventData", "eventType", "eventId", "aggregateId", "timestamp", "pk"])
    def test_a_missing_attribute_is_named(self, attribute: str) -> None:
        """A corrupt item raises SerializationError naming the attribute and, where readable, the stream."""
        events = codec()
        item = wire(events)
        del item[attribute]
        with pytest.raises(SerializationError, match=f"'{attribute}' is missing") as caught:
            events.decode(item)
        assert caught.value.version == 7
        assert caught.value.stream_id == ("<no partition key>" if attribute == "pk" else "Account:1")

    def test_a_retyped_attribute_is_named(self) -> None:
        """EventData stored as binary, or version as a string, is corrupt, not a KeyError."""
        events = codec()
        binary = {**wire(events), "eventData": {"B": b"xx"}}
        with pytest.raises(SerializationError, match="'eventData' is not of type S"):
            events.decode(binary)
        text_version = {**wire(events), "version": {"S": "7"}}
        with pytest.raises(SerializationError, match="'version' is not of type N"):
            events.decode(text_version)

    def test_version_must_agree_with_the_sort_key(self) -> None:
        """An item whose version attribute differs from its sort key is corrupt."""
        events = codec()
        item = {**wire(events), "version": {"N": "8"}}
        with pytest.raises(SerializationError, match="'version' is 8, sort key 7"):
            events.decode(item)

    def test_a_non_integer_number_is_named(self) -> None:
        """A sort key that is not an integer is reported, not passed on as a ValueError."""
        events = codec()
        with pytest.raises(SerializationError, match="'sk' is not an integer"):
            events.decode({**wire(events), "sk": {"N": "7.5"}})

    def test_wire_encoding_equals_what_the_model_serializes(self) -> None:
        """The lean encoder writes exactly the item PynamoDB would (names, types, outbox key)."""
        for events in (codec(), codec(partition_key_attribute="streamId", sort_key_attribute="seq")):
            assert events.encode(RECORD) == wire(events)
            dispatched = EncodedEvent(**{**attrs.asdict(RECORD), "is_dispatched": True})
            assert events.encode(dispatched) == wire(events, dispatched)
