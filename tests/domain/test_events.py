"""Event registration: type names, schema versions, duplicates, upcasters."""

from __future__ import annotations

import textwrap
from typing import Any

import attrs
import pytest

from dynamo_es import EventMetadata, EventRegistry, event, event_type_of
from dynamo_es.exceptions import DuplicateEventTypeError, EventTypeError


@pytest.fixture
def registry() -> EventRegistry:
    return EventRegistry()


class TestRegistration:
    def test_name_defaults_to_the_class_name_at_version_one(self, registry: EventRegistry) -> None:
        """A bare @event registers the class name at schema version 1."""

        @event(registry=registry)
        @attrs.frozen
        class Opened:
            owner: str

        assert event_type_of(Opened) == ("Opened", 1)
        assert event_type_of(Opened("ada")) == ("Opened", 1)
        assert registry.resolve("Opened") == (Opened, 1)

    def test_name_and_version_can_be_set(self, registry: EventRegistry) -> None:
        """``name`` and ``version`` override the defaults."""

        @event(name="account.opened", version=3, registry=registry)
        @attrs.frozen
        class Opened:
            owner: str

        assert event_type_of(Opened) == ("account.opened", 3)

    @pytest.mark.parametrize("decorate", [attrs.define, attrs.mutable], ids=["define", "mutable"])
    def test_a_mutable_class_is_refused(self, registry: EventRegistry, decorate: Any) -> None:
        """Events are immutable history: a class that is not frozen is refused at @event, saying how to fix it."""
        with pytest.raises(EventTypeError, match=r"Changed is not frozen.*@attrs\.frozen"):

            @event(registry=registry)
            @decorate
            class Changed:
                amount: int

        assert registry.resolve("Changed") is None

    def test_two_classes_under_one_name_fail_at_definition(self, registry: EventRegistry) -> None:
        """Registering a second, different class under a taken name raises at once."""

        @event(name="Opened", registry=registry)
        @attrs.frozen
        class First:
            pass

        with pytest.raises(DuplicateEventTypeError) as caught:

            @event(name="Opened", registry=registry)
            @attrs.frozen
            class Second:
                pass

        assert caught.value.name == "Opened"
        assert "First" in caught.value.existing and "Second" in caught.value.new

    def test_re_registering_the_same_class_replaces_it(self, registry: EventRegistry) -> None:
        """The same module-qualified class registered again (a reloaded module) is accepted."""

        @attrs.frozen
        class Opened:
            pass

        registry.register(Opened)
        registry.register(Opened, version=2)
        assert registry.resolve("Opened") == (Opened, 2)

    def test_subclass_of_an_event_is_not_registered_by_inheritance(self, registry: EventRegistry) -> None:
        """A subclass must be registered itself; it does not inherit its parent's type name."""

        @event(registry=registry)
        @attrs.frozen
        class Base:
            pass

        @attrs.frozen
        class Child(Base):
            pass

        with pytest.raises(EventTypeError, match="not a registered event"):
            event_type_of(Child())

    @pytest.mark.parametrize(("name", "version"), [("", 1), ("a:b", 1), ("Ok", 0), ("Ok", True)])
    def test_bad_names_and_versions_are_rejected(self, registry: EventRegistry, name: str, version: int) -> None:
        """Empty names, names with ':' and versions below 1 are errors."""

        @attrs.frozen
        class Thing:
            pass

        with pytest.raises(EventTypeError):
            registry.register(Thing, name=name, version=version)

    def test_only_attrs_classes_are_events(self, registry: EventRegistry) -> None:
        """A plain class cannot be registered."""

        class Plain:
            pass

        with pytest.raises(EventTypeError, match="attrs"):
            registry.register(Plain)


class TestUpcasters:
    def test_chain_applies_each_step_in_order(self, registry: EventRegistry) -> None:
        """Upcasting from 1 to 3 applies the 1->2 then the 2->3 function."""
        registry.add_upcaster("E", 1, lambda d: {**d, "steps": [*d.get("steps", []), 1]})
        registry.add_upcaster("E", 2, lambda d: {**d, "steps": [*d["steps"], 2]})
        assert registry.upcast("E", {}, 1, 3) == {"steps": [1, 2]}

    def test_missing_step_is_an_error(self, registry: EventRegistry) -> None:
        """A gap in the chain is reported with the missing step."""
        registry.add_upcaster("E", 1, dict)
        with pytest.raises(EventTypeError, match="from version 2 to 3"):
            registry.upcast("E", {}, 1, 3)

    def test_two_upcasters_for_one_step_is_an_error(self, registry: EventRegistry) -> None:
        """A step can have only one upcaster: another function for it is refused, naming both."""
        registry.add_upcaster("E", 1, dict)
        with pytest.raises(EventTypeError, match=r"exists already \(builtins\.dict\); builtins\.list would be"):
            registry.add_upcaster("E", 1, list)

    def test_re_executing_the_module_that_registers_an_upcaster_is_harmless(self, registry: EventRegistry) -> None:
        """A reload (importlib.reload, autoreload, a notebook cell run again, edited or not) replaces the upcaster."""
        source = textwrap.dedent(
            """
            from dynamo_es import upcaster

            @upcaster("E", from_version=1, registry=registry)
            def add_note(data):
                return {**data, "note": "v2"}
            """
        )
        edited = source.replace("from dynamo_es", "# a comment moves the function down\nfrom dynamo_es").replace(
            '"v2"', '"v2, edited"'
        )
        for text in (source, source, edited):
            namespace: dict[str, Any] = {"__name__": "domain.events", "registry": registry}
            exec(compile(text, "domain/events.py", "exec"), namespace)  # noqa: S102  # a module run again
        assert registry.upcast("E", {}, 1, 2) == {"note": "v2, edited"}  # the edited function replaced it


class TestMetadata:
    def test_merge_lays_set_fields_over(self) -> None:
        """merged_with keeps this metadata's fields unless the other sets them."""
        base = EventMetadata(correlation_id="c1", extra={"a": 1, "b": 1})
        merged = base.merged_with(EventMetadata(causation_id="x", extra={"b": 2}))
        assert merged == EventMetadata(correlation_id="c1", causation_id="x", extra={"a": 1, "b": 2})
        assert base.merged_with(None) is base
