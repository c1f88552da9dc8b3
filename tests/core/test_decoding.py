"""Fast builders of frozen attrs instances and the batch decoder: the same objects, fewer microseconds."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from dynamo_es import EncodedEvent, EventMetadata, StoredEvent
from dynamo_es.core.structuring import positional_builder


def test_a_stored_event_built_positionally_equals_one_built_by_init() -> None:
    """Every field lands where __init__ puts it; the result is as frozen, hashable and comparable."""
    when = datetime(2024, 5, 6, tzinfo=UTC)
    values = ("A:1", "1", "A", 3, "e", "T", when, {"x": 1}, EventMetadata(correlation_id="c"), True)
    names = [field.name for field in attrs.fields(StoredEvent)]
    built = positional_builder(StoredEvent)(*values)
    assert built == StoredEvent(**dict(zip(names, values, strict=True)))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.version = 4  # type: ignore[misc]  # the point: it is frozen


def test_an_encoded_event_too() -> None:
    """The other class a load makes by the thousand."""
    values = ("A:1", "1", "A", 3, "e", "T", "2024-01-01T00:00:00+00:00", "e30=", "{}", False, None)
    names = [field.name for field in attrs.fields(EncodedEvent)]
    assert positional_builder(EncodedEvent)(*values) == EncodedEvent(**dict(zip(names, values, strict=True)))


@attrs.frozen
class Checked:
    value: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen(slots=False)
class Unslotted:
    value: int


@attrs.frozen
class Initialised:
    value: int

    def __attrs_post_init__(self) -> None:
        pass


@attrs.frozen
class PreInitialised:
    value: int

    def __attrs_pre_init__(self) -> None:
        pass


@attrs.frozen(cache_hash=True)
class HashCached:
    value: int


@pytest.mark.parametrize("cls", [Checked, Unslotted, Initialised, PreInitialised, HashCached])
def test_classes_whose_init_does_more_are_refused(cls: type) -> None:
    """A validator, a pre- or post-init hook, a cached hash or no slots: __init__ would do more, so it is refused."""
    with pytest.raises(TypeError):
        positional_builder(cls)
