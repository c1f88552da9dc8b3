"""Values in untyped positions round-trip exactly or are refused at append: never changed silently."""

from __future__ import annotations

import enum
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_es import DynamoDBEventStore, EventMetadata, EventRegistry, EventSerializer, InMemoryEventStore, NewEvent
from dynamo_es import event as event_class
from dynamo_es.exceptions import SerializationError

registry = EventRegistry()


class Colour(enum.Enum):
    RED = "red"


@event_class(name="untyped.Anything", registry=registry)
@attrs.frozen
class Anything:
    value: Any
    other: object = None
    nested: dict[str, Any] = attrs.field(factory=dict)


Unannotated = event_class(name="untyped.Unannotated", registry=registry)(
    attrs.make_class("Unannotated", {"value": attrs.field()}, frozen=True)
)


@attrs.frozen
class Inner:
    payload: Any


@event_class(name="untyped.Outer", registry=registry)
@attrs.frozen
class Outer:
    inner: Inner


@event_class(name="untyped.Containers", registry=registry)
@attrs.frozen
class Containers:
    items: list[Inner] = attrs.field(factory=list)
    by_key: dict[str, Inner] = attrs.field(factory=dict)
    counts: dict[str, int] = attrs.field(factory=dict)


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.datetimes(timezones=st.none() | st.just(UTC))
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.sampled_from(Colour)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
        | st.frozensets(st.integers(), max_size=3)
        | st.sets(st.text(max_size=3), max_size=3)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (a -0.0 stays -0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


def memory() -> InMemoryEventStore:
    return InMemoryEventStore(serializer=EventSerializer(registry=registry))


def refusal(store: Any, aggregate_id: str, new_event: Any) -> SerializationError | None:
    """The SerializationError appending ``new_event`` raises (None if it is written)."""
    try:
        store.append(aggregate_id, "Untyped", [new_event], 0).raise_for_failure()
    except SerializationError as error:
        return error
    return None


def round_trips_or_is_refused(store: Any, make: Any, value: Any, read: Any) -> None:
    """``make(value)`` appended either loads back ``same`` or is refused with nothing written."""
    aggregate_id = f"u-{uuid.uuid4()}"
    error = refusal(store, aggregate_id, make(value))
    if error is None:
        assert same(read(store.load(aggregate_id, "Untyped")[0]), value)
    else:
        assert error.stream_id == f"Untyped:{aggregate_id}"
        assert "Declare the type" in str(error) or "JSON cannot carry" in str(error), str(error)
        assert store.load(aggregate_id, "Untyped") == []


class TestTheProperty:
    @settings(max_examples=300, deadline=None)
    @given(VALUES)
    def test_an_any_field(self, value: Any) -> None:
        """Any value in an Any field round-trips equal and of the same type, or is refused before writing."""
        round_trips_or_is_refused(memory(), Anything, value, lambda stored: stored.event.value)

    @settings(max_examples=100, deadline=None)
    @given(VALUES)
    def test_an_object_field_a_dict_of_any_and_an_unannotated_field(self, value: Any) -> None:
        """The same for ``object``, the values of ``dict[str, Any]`` and an attrs field without annotation."""
        round_trips_or_is_refused(memory(), lambda v: Anything(None, other=v), value, lambda s: s.event.other)
        round_trips_or_is_refused(
            memory(), lambda v: Anything(None, nested={"k": v}), value, lambda s: s.event.nested["k"]
        )
        round_trips_or_is_refused(memory(), Unannotated, value, lambda stored: stored.event.value)

    @settings(max_examples=100, deadline=None)
    @given(VALUES)
    def test_metadata_extra(self, value: Any) -> None:
        """User data in the metadata's ``extra`` is held to the same rule."""
        store, aggregate_id = memory(), f"m-{uuid.uuid4()}"
        error = refusal(store, aggregate_id, NewEvent(Anything(1), metadata=EventMetadata(extra={"user": value})))
        if error is None:
            assert same(store.load(aggregate_id, "Untyped")[0].metadata.extra["user"], value)
        else:
            assert "metadata extra holds" in str(error) or "JSON cannot carry" in str(error), str(error)
            assert store.load(aggregate_id, "Untyped") == []


class TestTheMessage:
    @pytest.mark.parametrize(
        ("value", "names"),
        [
            (b"\x00", ["field 'value'", "bytes", "`value: bytes`"]),
            (datetime(2026, 1, 1, tzinfo=UTC), ["datetime"]),
            (Decimal("1.10"), ["Decimal"]),
            ((1, 2), ["tuple"]),
            ({"files": [b"x"]}, ["bytes", "at ['files'][0]"]),
            ({1: "one"}, ["dict key of type int", "dict[int, ...]"]),
            (float("nan"), ["nan", "no NaN or infinity"]),
        ],
    )
    def test_names_the_field_the_value_and_the_fix(self, value: Any, names: list[str]) -> None:
        """The error names the stream, the version, the field, what it holds and how to declare it."""
        with pytest.raises(SerializationError) as caught:
            memory().append("a", "Untyped", [Anything(value)], 0)
        assert caught.value.stream_id == "Untyped:a" and caught.value.version == 1
        assert all(name in str(caught.value) for name in names), str(caught.value)

    def test_a_nested_class_is_named_by_its_dotted_path(self) -> None:
        """A refused value inside a nested attrs class names ``inner.payload``."""
        with pytest.raises(SerializationError, match=r"field 'inner\.payload' holds a value of type bytes"):
            memory().append("a", "Untyped", [Outer(Inner(b"x"))], 0)

    @pytest.mark.parametrize(
        ("containers", "where"),
        [
            (Containers(items=[Inner(2), Inner(b"x")]), "field 'items[1].payload' holds a value of type bytes"),
            (Containers(by_key={"a": Inner(1), "b": Inner(Decimal(1))}), "field \"by_key['b'].payload\" holds"),
            (
                Containers(items=[Inner([1, {"k": (1,)}])]),
                "field 'items[0].payload' holds a value of type tuple at [1]['k']",
            ),
        ],
    )
    def test_a_class_inside_a_container_is_named_by_its_index(self, containers: Containers, where: str) -> None:
        """Inside list[Inner] or dict[str, Inner], the error names the element and its field, and `payload: ...`."""
        with pytest.raises(SerializationError) as caught:
            memory().append("a", "Untyped", [containers], 0)
        assert where in str(caught.value) and "`payload: " in str(caught.value), str(caught.value)

    def test_a_non_str_key_where_str_keys_are_declared_is_refused(self) -> None:
        """dict[str, int] given an int key would read back a str key: refused, saying the keys are declared str."""
        with pytest.raises(
            SerializationError, match="field 'counts' holds a dict key of type int where its keys are declared str"
        ):
            memory().append("a", "Untyped", [Containers(counts={1: 2})], 0)

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({1: "x"}, "metadata extra holds a dict key of type int"),
            ({"ok": [1, {"a": b"x"}]}, "metadata extra holds a value of type bytes at ['ok'][1]['a']"),
        ],
    )
    def test_metadata_extra_is_refused_with_its_path_and_no_type_to_declare(self, extra: Any, message: str) -> None:
        """Metadata extra takes JSON values only: an int key or bytes deep inside is refused with the full path."""
        new = NewEvent(Anything(1), metadata=EventMetadata(extra=extra))
        with pytest.raises(SerializationError) as caught:
            memory().append("a", "Untyped", [new], 0)
        assert message in str(caught.value) and "Declare" not in str(caught.value), str(caught.value)

    def test_declared_types_still_round_trip(self) -> None:
        """Declaring the type is the fix: the same values in typed fields come back exactly."""

        @event_class(name="untyped.Typed", registry=registry)
        @attrs.frozen
        class Typed:
            blob: bytes
            when: datetime
            pair: tuple[int, int]
            by_id: dict[int, str]

        store = memory()
        typed = Typed(b"\x00", datetime(2026, 1, 1, tzinfo=UTC), (1, 2), {1: "one"})
        store.append("a", "Untyped", [typed], 0).raise_for_failure()
        assert store.load("a", "Untyped")[0].event == typed


@pytest.mark.ddblocal
class TestOnDynamoDB:
    def test_refused_before_anything_is_written(self, events_table: Any) -> None:
        """On DynamoDB Local too: a refused event writes nothing, even beside good ones in the same append."""
        store = DynamoDBEventStore(events_table, serializer=EventSerializer(registry=registry))
        aggregate_id = f"u-{uuid.uuid4()}"
        with pytest.raises(SerializationError, match="bytes"):
            store.append(aggregate_id, "Untyped", [Anything([1, "a"]), Anything({"k": b"x"})], 0)
        assert store.stream_version(aggregate_id, "Untyped") == 0
        store.append(aggregate_id, "Untyped", [Anything({"k": [1.5, None, True]})], 0).raise_for_failure()
        assert same(store.load(aggregate_id, "Untyped")[0].event.value, {"k": [1.5, None, True]})
