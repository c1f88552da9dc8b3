"""Bad input is refused with a named error before anything is written, by the rule DynamoDB applies."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_es import (
    EventMetadata,
    EventRegistry,
    EventSerializer,
    EventStoreSettings,
    InMemoryEventStore,
    NewEvent,
    event,
)
from dynamo_es.exceptions import ConfigurationError, InvalidStreamError, SerializationError

registry = EventRegistry()


@event(name="InputChecked", registry=registry)
@attrs.frozen
class Checked:
    value: Any = None
    tags: frozenset[str] = frozenset()


def store() -> InMemoryEventStore:
    return InMemoryEventStore(EventSerializer(registry=registry))


class TestStreamIds:
    def test_the_partition_key_limit_counts_utf8_bytes(self) -> None:
        """1,024 four-byte characters are 4,096 bytes: refused, although 1,024 characters would pass a count."""
        with pytest.raises(InvalidStreamError, match="4,101 bytes of UTF-8; DynamoDB's limit is 2,048"):
            store().append("😀" * 1024, "Acct", [Checked()], 0)
        assert store().append("a" * (2048 - len("Acct:")), "Acct", [Checked()], 0).success

    def test_a_lone_surrogate_is_a_named_error(self) -> None:
        """An id that is not valid Unicode text raises InvalidStreamError, not UnicodeEncodeError."""
        with pytest.raises(InvalidStreamError, match="not valid Unicode text"):
            store().append("bad\ud800id", "Acct", [Checked()], 0)


class TestValues:
    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
    def test_values_json_cannot_carry_are_refused(self, value: float) -> None:
        """NaN and infinities raise SerializationError; nothing is written."""
        memory = store()
        with pytest.raises(SerializationError, match="JSON cannot carry"):
            memory.append("a", "Acct", [Checked(value)], 0)
        assert memory.stream_version("a", "Acct") == 0

    def test_a_self_referencing_value_is_a_named_error(self) -> None:
        """A list that contains itself raises SerializationError, not RecursionError."""
        loop: list[Any] = []
        loop.append(loop)
        with pytest.raises(SerializationError, match="recursion"):
            store().append("a", "Acct", [Checked(loop)], 0)

    def test_sets_round_trip_where_declared_and_are_refused_where_not(self) -> None:
        """A frozenset field comes back a frozenset; a set in an untyped field is refused, never turned into a list."""
        memory = store()
        memory.append("a", "Acct", [Checked(tags=frozenset({"x", "y"}))], 0).raise_for_failure()
        assert memory.load("a", "Acct")[0].event.tags == frozenset({"x", "y"})
        with pytest.raises(SerializationError, match="set in a position whose type is not declared"):
            memory.append("a", "Acct", [Checked({1, 2})], 1)

    @settings(max_examples=60, deadline=None)
    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
            max_leaves=12,
        )
    )
    def test_any_json_payload_round_trips(self, value: Any) -> None:
        """Whatever JSON-able value an event holds, it loads back equal."""
        serializer = EventSerializer(registry=registry)
        encoded = serializer.encode(NewEvent(Checked(value)), aggregate_type="Acct", aggregate_id="p", version=1)
        assert serializer.decode(encoded).event == Checked(value)


class TestSharedMetadata:
    def test_metadata_shared_between_loaded_events_is_read_only(self) -> None:
        """Events of one save share their parsed metadata; its extra keys cannot be changed through one of them."""
        memory = store()
        metadata = EventMetadata(extra={"tenant": "t1"})
        memory.append("m", "Acct", [Checked(1), Checked(2)], 0, metadata=metadata).raise_for_failure()
        first, second = memory.load("m", "Acct")
        with pytest.raises(TypeError):
            first.metadata.extra["tenant"] = "changed"  # type: ignore[index]
        assert second.metadata.extra == {"tenant": "t1"}


class TestSettings:
    @pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1", "http://", "http://host:notaport", "http://[::1"])
    def test_a_malformed_endpoint_is_a_configuration_error(self, url: str) -> None:
        """endpoint_url is checked when the settings are made, not at the first request."""
        with pytest.raises(ConfigurationError, match="endpoint_url"):
            EventStoreSettings(endpoint_url=url)

    def test_an_empty_variable_is_an_error(self) -> None:
        """DYNAMO_ES_ENDPOINT_URL="" is a mistake, not the default."""
        with pytest.raises(ConfigurationError, match=r"DYNAMO_ES_ENDPOINT_URL.*empty"):
            EventStoreSettings.from_env(environ={"DYNAMO_ES_ENDPOINT_URL": ""})

    def test_the_launcher_variable_is_not_a_setting(self) -> None:
        """The DynamoDB Local launcher's DYNAMO_ES_DYNAMODB_LOCAL_DIR does not break from_env."""
        settings = EventStoreSettings.from_env(environ={"DYNAMO_ES_DYNAMODB_LOCAL_DIR": "/opt/ddb"})
        assert settings == EventStoreSettings()

    def test_a_key_given_twice_is_an_error(self) -> None:
        """EventsTableName and events_table_name in one mapping: refused, not a silent pick."""
        with pytest.raises(ConfigurationError, match="given twice"):
            EventStoreSettings.from_mapping({"eventsTableName": "One", "events_table_name": "Two"})
