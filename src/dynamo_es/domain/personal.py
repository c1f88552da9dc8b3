"""Marking personal data in event classes: whose it is, and which fields hold it.

An event class marks the field that names the data subject with `subject()` and each field that
holds that subject's personal data with `personal()`::

    @event(name="CustomerRegistered")
    @attrs.frozen
    class CustomerRegistered:
        customer_id: str = subject()
        email: str = personal()
        plan: str = "free"

With crypto-shredding configured (`dynamo_es.privacy`), the marked fields are stored encrypted
with the subject's own key; once the subject is forgotten, they read back as their placeholder
(``FORGOTTEN`` unless the field says otherwise) and every other field as it was. Nothing here
encrypts: this module only declares.
"""

from __future__ import annotations

import weakref
from typing import Any

import attrs

from ..exceptions import EventTypeError

__all__ = [
    "FORGOTTEN",
    "SEALED",
    "SEALED_STATE",
    "PersonalData",
    "personal",
    "personal_data_of",
    "sealed_as_forgotten",
    "subject",
]

SEALED_STATE = "$sealedState"
"""The key of a snapshot state sealed with its subjects' keys: ``{"$sealedState": ..., "subjects": [...]}``."""
SEALED = "$sealed"
"""The key of a sealed value in a stored payload: ``{"$sealed": "<Base64 of nonce and ciphertext>"}``."""
FORGOTTEN = "<forgotten>"
"""What a forgotten subject's ``str`` field reads back as, unless ``personal(forgotten=...)`` says otherwise."""

_MARKINGS: weakref.WeakKeyDictionary[type[Any], PersonalData | None] = weakref.WeakKeyDictionary()
_SUBJECT = "dynamo_es.subject"
_PERSONAL = "dynamo_es.personal"


def subject(**field_options: Any) -> Any:
    """An attrs field naming the data subject whose personal data the event's `personal()` fields hold.

    Its value (a ``str``: a customer id, say) names the subject's key; it is stored in the clear.
    ``field_options`` go to ``attrs.field`` (``default=...``, ``kw_only=True``, ...).
    """
    metadata = {**field_options.pop("metadata", {}), _SUBJECT: True}
    return attrs.field(**field_options, metadata=metadata)


def personal(*, forgotten: Any = FORGOTTEN, **field_options: Any) -> Any:
    """An attrs field holding the subject's personal data: stored encrypted, unreadable once forgotten.

    ``forgotten`` is what the field reads back as after the subject is forgotten; it must be a
    value of the field's type (the default suits ``str`` fields). ``field_options`` go to
    ``attrs.field``.
    """
    metadata = {**field_options.pop("metadata", {}), _PERSONAL: forgotten}
    return attrs.field(**field_options, metadata=metadata)


@attrs.frozen
class PersonalData:
    """What an event class marks: the subject field and each personal field's placeholder."""

    subject_field: str
    placeholders: dict[str, Any]


def personal_data_of(cls: type[Any]) -> PersonalData | None:
    """The class's marking, or None when it marks nothing (looked up once per class).

    Raises:
        EventTypeError: personal fields without exactly one subject field, or a subject field
            that is personal itself.
    """
    if cls not in _MARKINGS:
        _MARKINGS[cls] = _marking(cls)
    return _MARKINGS[cls]


def _marking(cls: type[Any]) -> PersonalData | None:
    if not attrs.has(cls):
        return None
    fields = attrs.fields(cls)
    subjects = [field.name for field in fields if field.metadata.get(_SUBJECT)]
    placeholders = {field.name: field.metadata[_PERSONAL] for field in fields if _PERSONAL in field.metadata}
    if not placeholders and not subjects:
        return None
    if len(subjects) != 1 or not placeholders:
        raise EventTypeError(
            f"{cls.__qualname__} marks {len(subjects)} subject field(s) and {len(placeholders)} personal field(s): "
            "an event with personal data names exactly one subject() and at least one personal() field"
        )
    if subjects[0] in placeholders:
        raise EventTypeError(f"{cls.__qualname__}.{subjects[0]} cannot be both subject() and personal()")
    _check_placeholders(cls, placeholders)
    return PersonalData(subjects[0], placeholders)


def _check_placeholders(cls: type[Any], placeholders: dict[str, Any]) -> None:
    """The default placeholder is a ``str``: a field of another type must say what it reads back as."""
    hints = attrs.resolve_types(cls)
    for field in attrs.fields(hints):
        if field.name in placeholders and placeholders[field.name] is FORGOTTEN and field.type is not str:
            raise EventTypeError(
                f"{cls.__qualname__}.{field.name} is not a str: give personal(forgotten=...) a value of its type "
                "(what it reads back as once its subject is forgotten)"
            )


def sealed_as_forgotten(cls: type[Any], document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with each sealed value replaced by its field's placeholder: a read without the keys.

    A serializer with no shredder reads personal data as if its subject were forgotten, never
    as the sealed form (which a ``str`` field would otherwise take as text).
    """
    sealed = [name for name, value in document.items() if type(value) is dict and len(value) == 2 and SEALED in value]
    if not sealed:
        return document
    marking = personal_data_of(cls)
    placeholders = marking.placeholders if marking is not None else {}
    return {**document, **{name: placeholders.get(name, FORGOTTEN) for name in sealed}}


def subject_field_of(cls: type[Any]) -> str | None:
    """The field naming the subject of an event class with personal data; None for any other class."""
    marking = personal_data_of(cls)
    return None if marking is None else marking.subject_field
