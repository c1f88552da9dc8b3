"""No raw exception reaches users: every public entry point, fed bad input, raises a DynamoESError.

(TypeError is the documented exception for arguments of the wrong Python type.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from dynamo_es import (
    AggregateRoot,
    DynamoDBEventStore,
    DynamoESError,
    EventMetadata,
    EventStore,
    EventStoreSettings,
    InMemoryEventStore,
    NewEvent,
    Repository,
    event,
)


@event(name="PublicErrorsNoted")
@attrs.frozen
class Noted:
    value: Any = None


class Thing(AggregateRoot):
    pass


loop: list[Any] = []
loop.append(loop)

BAD_CALLS: dict[str, Callable[[EventStore], Any]] = {
    "empty id": lambda s: s.append("", "T", [Noted()], 0),
    "type with colon": lambda s: s.append("a", "T:x", [Noted()], 0),
    "negative expected version": lambda s: s.append("a", "T", [Noted()], -1),
    "bool expected version": lambda s: s.append("a", "T", [Noted()], True),
    "unregistered event": lambda s: s.append("a", "T", [object()], 0),
    "nan": lambda s: s.append("a", "T", [Noted(float("nan"))], 0),
    "recursive": lambda s: s.append("a", "T", [Noted(loop)], 0),
    "untyped set": lambda s: s.append("a", "T", [Noted({1})], 0),
    "huge event": lambda s: s.append("a", "T", [Noted("x" * 500_000)], 0),
    "long id": lambda s: s.append("é" * 1500, "T", [Noted()], 0),
    "surrogate id": lambda s: s.append("\udc00", "T", [Noted()], 0),
    "event id not a string": lambda s: s.append("a", "T", [NewEvent(Noted(), event_id=5)], 0),  # type: ignore[arg-type]
    "empty event id": lambda s: s.append("a", "T", [NewEvent(Noted(), event_id="")], 0),
    "reserved metadata": lambda s: s.append("a", "T", [NewEvent(Noted(), metadata=_reserved())], 0),
    "load from 0": lambda s: s.load("a", "T", from_version=0),
    "load negative to": lambda s: s.load("a", "T", to_version=-2),
    "stream_version empty id": lambda s: s.stream_version(" ", "T"),
    "repository version 0": lambda s: Repository(Thing, s).get("a", version=0),
    "repository missing": lambda s: Repository(Thing, s).get("never-written"),
    "mark_dispatched version 0": lambda s: s.mark_dispatched("a", "T", 0),  # type: ignore[attr-defined]
}


def _reserved() -> EventMetadata:
    return EventMetadata(extra={"schemaVersion": 9})


def stores() -> list[Any]:
    return [
        pytest.param(lambda request: InMemoryEventStore(), id="memory"),
        pytest.param(
            lambda request: DynamoDBEventStore(request.getfixturevalue("events_table")),
            id="dynamodb",
            marks=pytest.mark.ddblocal,
        ),
    ]


@pytest.mark.parametrize("make_store", stores())
@pytest.mark.parametrize("call", sorted(BAD_CALLS))
def test_bad_input_raises_only_named_errors(make_store: Any, call: str, request: pytest.FixtureRequest) -> None:
    """Each bad call raises a DynamoESError subclass (and writes nothing)."""
    store = make_store(request)
    with pytest.raises(DynamoESError):
        BAD_CALLS[call](store)
    assert store.stream_version("a", "T") == 0 or call in {"load from 0", "load negative to"}


@pytest.mark.parametrize("values", [{"endpoint_url": "x"}, {"max_batch_size": 0}, {"events_table_name": "a"}])
def test_bad_settings_raise_a_named_error(values: dict[str, Any]) -> None:
    """Settings refuse bad values when made."""
    with pytest.raises(DynamoESError):
        EventStoreSettings(**values)
