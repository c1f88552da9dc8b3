"""The quick structure hook: cattrs' own result, or cattrs' own error, a few microseconds sooner."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
import pytest
from cattrs.gen import make_dict_structure_fn, override

from dynamo_es import make_converter
from dynamo_es.core.structuring import quick_structure_hook, structure_many_of


class Colour(enum.Enum):
    RED = "red"


@attrs.frozen
class Inner:
    name: str


@attrs.frozen
class Plain:
    amount: int
    note: str
    ratio: float
    flag: bool


@attrs.frozen
class Rich:
    when: datetime
    colour: Colour
    inner: Inner
    tags: list[str]
    maybe: int | None = None


@attrs.frozen(kw_only=True)
class Private:
    _secret: str
    count: int = 0


@attrs.frozen
class Validated:
    amount: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen(cache_hash=True)
class Hashed:
    amount: int


@attrs.frozen
class PreInit:
    amount: int

    def __attrs_pre_init__(self) -> None:
        pass


@attrs.frozen
class Computed:
    amount: int
    double: int = attrs.field(init=False, default=0)


def careful(cls: type, document: Any) -> Any:
    """What cattrs' own generated hook gives for ``document`` (the result, or the error)."""
    converter = make_converter()
    try:
        return converter.gen_structure_attrs_fromdict(cls)(document, cls)
    except Exception as error:  # noqa: BLE001  # compared with the quick hook's error
        return error


def quick(cls: type, document: Any) -> Any:
    converter = make_converter()
    try:
        return converter.structure(document, cls)
    except Exception as error:  # noqa: BLE001  # compared with cattrs' own error
        return error


WHEN = "2024-01-02T03:04:05+00:00"
CASES = [
    (Plain, {"amount": 1, "note": "n", "ratio": 0.5, "flag": True}),
    (Plain, {"amount": "2", "note": "n", "ratio": 1, "flag": True}),  # converted by cattrs: int("2"), float(1)
    (Plain, {"amount": True, "note": 5, "ratio": 0.5, "flag": 1}),  # a bool is not an int here: cattrs' int(True)
    (Plain, {"amount": 1, "note": "n", "ratio": 0.5, "flag": True, "extra": 1}),
    (Plain, {"amount": 1, "note": "n", "ratio": 0.5}),
    (Plain, {"amount": "x", "note": "n", "ratio": 0.5, "flag": True}),
    (Plain, ["not", "a", "dict", "!"]),
    (Rich, {"when": WHEN, "colour": "red", "inner": {"name": "i"}, "tags": ["a"], "maybe": 3}),
    (Rich, {"when": WHEN, "colour": "red", "inner": {"name": "i"}, "tags": ["a"]}),
    (Rich, {"when": WHEN, "colour": "blue", "inner": {"name": "i"}, "tags": ["a"], "maybe": None}),
    (Private, {"_secret": "s", "count": 2}),
    (Private, {"secret": "s", "count": 2}),
    (Validated, {"amount": 1}),
    (Validated, {"amount": 0}),
    (Hashed, {"amount": 1}),
    (PreInit, {"amount": 1}),
    (Computed, {"amount": 1}),
]


@pytest.mark.parametrize(("cls", "document"), CASES)
def test_the_result_or_the_error_is_cattrs_own(cls: type, document: Any) -> None:
    """Exact types, conversions, missing and extra keys, nested classes, validators, hashes: as cattrs."""
    expected, got = careful(cls, document), quick(cls, document)
    if isinstance(expected, Exception):
        assert type(got) is type(expected) and str(got) == str(expected)
        assert repr(getattr(got, "exceptions", None)) == repr(getattr(expected, "exceptions", None))
    else:
        assert got == expected and type(got) is cls
        if cls is Hashed:
            assert hash(got) == hash(expected)


def test_an_instance_is_built_without_its_init_only_when_that_is_the_same() -> None:
    """A plain class takes the quick path; a validated, hashed or pre-initialised one gets cattrs' hook."""
    converter = make_converter()
    assert "quick_structure" in quick_structure_hook(Plain, converter).__qualname__
    for cls in (Validated, Hashed, PreInit, Computed):
        assert "quick_structure" not in quick_structure_hook(cls, converter).__qualname__


def test_a_hook_registered_for_the_class_still_wins() -> None:
    """A user's own structure hook for an event class takes precedence over the quick one."""
    converter = make_converter()
    converter.register_structure_hook(Inner, lambda document, _: Inner(document["n"].upper()))
    assert converter.structure({"n": "x"}, Inner) == Inner("X")


def test_a_renaming_override_is_kept() -> None:
    """A class structured by make_dict_structure_fn with a rename reads the renamed key."""
    converter = make_converter()
    converter.register_structure_hook(Inner, make_dict_structure_fn(Inner, converter, name=override(rename="n")))
    assert converter.structure({"n": "x"}, Inner) == Inner("x")


def test_a_hook_registered_for_a_primitive_is_called() -> None:
    """A converter that structures str its own way gets no pass-through for str fields."""
    converter = make_converter()
    converter.register_structure_hook(str, lambda value, _: str(value).strip())
    assert converter.structure({"name": "  padded "}, Inner) == Inner("padded")


def test_a_converter_that_forbids_extra_keys_still_does() -> None:
    """forbid_extra_keys is cattrs' to enforce: an extra key takes the careful path and raises."""
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook_factory(attrs.has, lambda cls: quick_structure_hook(cls, converter))
    with pytest.raises(cattrs.ClassValidationError):
        converter.structure({"name": "x", "other": 1}, Inner)
    assert converter.structure({"name": "x"}, Inner) == Inner("x")


def test_dates_keep_their_zone() -> None:
    """A field structured by a registered hook (datetime) gets that hook's value."""
    value = quick(Rich, {"when": WHEN, "colour": "red", "inner": {"name": "i"}, "tags": []})
    assert value.when == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_batch_of_one_class_is_built_as_one_by_one() -> None:
    """structure_many gives what the hook gives for each document, in order."""
    converter = make_converter()
    hook = converter.get_structure_hook(Rich)
    many = structure_many_of(hook)
    assert many is not None
    documents = [
        {"when": WHEN, "colour": "red", "inner": {"name": str(n)}, "tags": [str(n)], "maybe": n} for n in range(5)
    ]
    assert many(documents) == [hook(document, Rich) for document in documents]


@pytest.mark.parametrize(
    "odd",
    [
        {"amount": "2", "note": "n", "ratio": 0.5, "flag": True},
        {"amount": 1, "note": "n", "ratio": 0.5},
        {"amount": 1, "note": "n", "ratio": 0.5, "flag": True, "extra": 1},
        ["a", "list", "of", "four"],
    ],
)
def test_a_batch_with_one_document_off_the_fast_path_is_none(odd: Any) -> None:
    """One document needing cattrs' care (a conversion, a missing or extra key, a list): the caller does each."""
    many = structure_many_of(make_converter().get_structure_hook(Plain))
    assert many is not None
    plain = {"amount": 1, "note": "n", "ratio": 0.5, "flag": True}
    assert many([plain, odd, plain]) is None
    assert many([plain]) == [Plain(1, "n", 0.5, True)]


def test_only_quick_hooks_have_a_batch_form() -> None:
    """The hook of a validated class (cattrs' own) has none: the caller goes one by one."""
    converter = make_converter()
    assert structure_many_of(converter.get_structure_hook(Validated)) is None
    assert structure_many_of(converter.get_structure_hook(Plain)) is not None
