"""Marking personal data: one subject field, personal fields with placeholders, mistakes refused."""

from __future__ import annotations

import attrs
import pytest

from dynamo_es.domain.personal import (
    FORGOTTEN,
    SEALED,
    PersonalData,
    personal,
    personal_data_of,
    sealed_as_forgotten,
    subject,
)
from dynamo_es.exceptions import EventTypeError


@attrs.frozen
class Marked:
    who: str = subject()
    email: str = personal()
    age: int = personal(forgotten=0, default=1)
    other: str = "x"


def test_a_marked_class_names_its_subject_and_placeholders() -> None:
    """The subject field, each personal field's placeholder (FORGOTTEN by default), attrs options kept."""
    assert personal_data_of(Marked) == PersonalData("who", {"email": FORGOTTEN, "age": 0})
    assert Marked("s", "e").age == 1


def test_an_unmarked_class_has_none() -> None:
    """No marks, no personal data (and a class that is not attrs neither)."""

    @attrs.frozen
    class Plain:
        value: int

    assert personal_data_of(Plain) is None and personal_data_of(int) is None


@pytest.mark.parametrize("shape", ["no-subject", "two-subjects", "subject-only"])
def test_a_wrong_marking_is_refused(shape: str) -> None:
    """Personal fields need exactly one subject; a subject alone marks nothing personal."""
    if shape == "no-subject":

        @attrs.frozen
        class Wrong:
            email: str = personal()
    elif shape == "two-subjects":

        @attrs.frozen
        class Wrong:  # type: ignore[no-redef]  # one class per case
            a: str = subject()
            b: str = subject()
            email: str = personal()
    else:

        @attrs.frozen
        class Wrong:  # type: ignore[no-redef]  # one class per case
            a: str = subject()

    with pytest.raises(EventTypeError):
        personal_data_of(Wrong)


def test_field_metadata_of_ones_own_is_kept() -> None:
    """Metadata given to personal() or subject() is merged, not replaced."""

    @attrs.frozen
    class Tagged:
        who: str = subject(metadata={"doc": "the customer"})
        email: str = personal(metadata={"doc": "contact"})

    assert attrs.fields(Tagged).who.metadata["doc"] == "the customer"
    assert attrs.fields(Tagged).email.metadata["doc"] == "contact"


def test_a_read_without_keys_gives_the_placeholders() -> None:
    """Sealed values become their field's placeholder; a document with none is returned as it is."""
    document = {
        "who": "s",
        "email": {SEALED: "AAAA", "subject": "s"},
        "age": {SEALED: "BBBB", "subject": "s"},
        "other": "x",
    }
    assert sealed_as_forgotten(Marked, document) == {"who": "s", "email": FORGOTTEN, "age": 0, "other": "x"}
    clear = {"who": "s", "email": "e", "age": 3, "other": "x"}
    assert sealed_as_forgotten(Marked, clear) is clear


def test_a_field_that_is_not_a_str_must_name_its_placeholder() -> None:
    """The default placeholder is text: an int field without forgotten=... is refused at once."""

    @attrs.frozen
    class Untold:
        who: str = subject()
        age: int = personal()

    with pytest.raises(EventTypeError, match="forgotten="):
        personal_data_of(Untold)
