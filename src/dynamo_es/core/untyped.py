"""Values in untyped positions (``Any``, ``object``, an unannotated field) must be JSON's own.

In a typed field the converter knows what to read back: ``bytes``, ``datetime``, ``tuple[...]``
round-trip. In an untyped one it reads back what JSON holds, so a ``bytes`` would come back as
a string, a ``tuple`` as a list and an ``int`` dict key as a string. Events are permanent
history: such a value is refused at append, with the field and the fix, never changed silently.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, mapping_unstructure_factory, override

__all__ = ["UntypedValueError", "configure_untyped", "json_native"]

C = TypeVar("C", bound=cattrs.Converter)
_SCALARS = frozenset({str, int, bool, type(None)})


class UntypedValueError(TypeError):
    """A value with no exact JSON form in an untyped position; ``path`` locates it within the field."""

    def __init__(self, value: Any, path: str, *, key: bool = False, declared: bool = False) -> None:
        super().__init__(type(value).__name__, path)
        self.value = value
        self.path = path
        self.key = key
        self.declared = declared

    def __str__(self) -> str:
        return describe(self, "")


def describe(error: UntypedValueError, field: str, path: str | None = None) -> str:
    """The refusal, naming the field (if known) and the ``path`` within it, what it holds, and the fix."""
    where = f"field {field!r}" if field else "an untyped field"
    path = error.path if path is None else path
    inside = f" at {path}" if path else ""
    kind = type(error.value).__name__
    if isinstance(error.value, float):
        return f"{where} holds {error.value}{inside}, which JSON cannot carry (no NaN or infinity)"
    if error.declared:
        return (
            f"{where} holds a dict key of type {kind}{inside} where its keys are declared str: it would be read "
            f"back as a str. Use str keys, or declare the key type (for example `dict[{kind}, ...]`)"
        )
    if field == "metadata.extra":
        what = f"a dict key of type {kind}" if error.key else f"a value of type {kind}"
        return (
            f"metadata extra holds {what}{inside}: it takes only JSON's own values (None, bool, "
            "int, float, str, list, dict with str keys); convert it first (for example a datetime to ISO text)"
        )
    what = f"a dict key of type {kind}" if error.key else f"a value of type {kind}"
    example = f"{field.rpartition('.')[2] or 'value'}: {_example(error, kind, path)}"
    return (
        f"{where} holds {what}{inside} in a position whose type is not declared (Any, object or no "
        f"annotation), so it would be read back as another type. Declare the type there "
        f"(for example `{example}`) to have it read back exactly"
    )


def _example(error: UntypedValueError, kind: str, path: str) -> str:
    if error.key:
        return f"dict[{kind}, ...]"
    return kind if not path else f"dict[str, {kind}] or list[{kind}]"


def json_native(value: Any, path: str = "") -> Any:
    """``value`` itself if JSON reads it back equal and of the same type (recursively); raise otherwise."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise UntypedValueError(value, path)
        return value
    if kind is list:
        return [json_native(item, f"{path}[{n}]") for n, item in enumerate(value)]
    if kind is dict:
        return {_key(key, path): json_native(item, f"{path}[{key!r}]") for key, item in value.items()}
    raise UntypedValueError(value, path)


def _key(key: Any, path: str) -> str:
    if type(key) is not str:
        raise UntypedValueError(key, path, key=True)
    return key


def _is_untyped(kind: Any) -> bool:
    return kind is Any or kind is object


def configure_untyped(converter: C) -> C:
    """Make ``converter`` refuse what untyped positions cannot carry back (see the module)."""
    converter.register_unstructure_hook_func(_is_untyped, json_native)
    converter.register_structure_hook_func(_is_untyped, lambda value, _: value)  # `object` as `Any`
    converter.register_unstructure_hook_factory(_has_unannotated_fields, _unannotated_fields_checked(converter))
    converter.register_unstructure_hook_factory(_is_str_keyed, _str_keys_checked(converter))
    return converter


def _is_str_keyed(kind: Any) -> bool:
    """Whether ``kind`` is a mapping type declared with ``str`` keys (``dict[str, X]``, ``Mapping[str, X]``)."""
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    return bool(arguments) and arguments[0] is str and origin in (dict, Mapping, MutableMapping)


def _str_keys_checked(converter: cattrs.Converter) -> Callable[[Any], Any]:
    """A dict declared with str keys refuses other keys: JSON would read them back as str."""

    def factory(kind: Any) -> Any:
        # cattrs' own factory, not gen_unstructure_mapping: that one registers its result as the direct
        # hook of ``kind``, which would take this check's place from then on
        unstructure = mapping_unstructure_factory(kind, converter)

        def checked(mapping: Any) -> Any:
            for key in mapping:
                if type(key) is not str:
                    raise UntypedValueError(key, "", key=True, declared=True)
            return unstructure(mapping)

        return checked

    return factory


def _has_unannotated_fields(cls: Any) -> bool:
    return isinstance(cls, type) and attrs.has(cls) and any(field.type is None for field in attrs.fields(cls))


def _unannotated_fields_checked(converter: cattrs.Converter) -> Callable[[Any], Any]:
    def factory(cls: Any) -> Any:
        checked = {field.name: override(unstruct_hook=json_native) for field in attrs.fields(cls) if field.type is None}
        return make_dict_unstructure_fn(
            cls,
            converter,
            _cattrs_omit_if_default=converter.omit_if_default,
            **checked,  # type: ignore[arg-type]  # cattrs types **kwargs as overrides, mypy mixes them with flags
        )

    return factory


def untyped_field(converter: cattrs.Converter, value: Any) -> tuple[str, str]:
    """Where in event ``value`` an untyped value is refused: the field (``items[1].blob``), the path within it.

    ``("", "")`` when no field of ``value`` is refused.
    """
    return locate(converter, value, type(value), "") or ("", "")


def locate(converter: cattrs.Converter, value: Any, declared: Any, name: str) -> tuple[str, str] | None:
    """The refused untyped value inside ``value`` (declared as ``declared``, at ``name``), None if there is none.

    Typed attrs instances and typed containers are searched through (their fields, their
    elements), so the answer names the innermost field; an untyped position is the answer itself.
    """
    if not _refused(converter, value, declared):
        return None
    if attrs.has(type(value)) and not _is_untyped(declared):
        for field in attrs.fields(attrs.resolve_types(type(value))):  # string annotations become types
            kind = Any if field.type is None else field.type
            found = locate(converter, getattr(value, field.name), kind, f"{name}.{field.name}" if name else field.name)
            if found:
                return found
    element = _element_type(declared)
    if element is not None and isinstance(value, list | tuple | dict):
        for key, entry in value.items() if isinstance(value, dict) else enumerate(value):
            found = locate(converter, entry, element, f"{name}[{key!r}]")
            if found:
                return found
    return name, _path_within(value)


def _element_type(declared: Any) -> Any:
    """The declared type of a typed container's elements (values of a mapping), or None."""
    arguments = [argument for argument in typing.get_args(declared) if argument is not Ellipsis]
    if not arguments or not isinstance(typing.get_origin(declared), type):
        return None
    element = arguments[-1]
    return None if _is_untyped(element) else element


def _refused(converter: cattrs.Converter, item: Any, declared: Any) -> bool:
    """Whether unstructuring ``item`` as ``declared`` is refused for an untyped value (other errors: no)."""
    try:
        converter.unstructure(item, declared)
    except UntypedValueError:
        return True
    except (TypeError, ValueError, RecursionError):  # the field's own problem, reported by the encoder
        return False
    return False


def _path_within(item: Any) -> str:
    """The path to the refused value inside ``item``, a declared container of untyped values or one itself."""
    entries = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list | tuple) else ()
    for key, entry in entries:
        try:
            json_native(entry, f"[{key!r}]")
        except UntypedValueError as error:
            return error.path
    try:
        json_native(item)
    except UntypedValueError as error:
        return error.path
    return ""
