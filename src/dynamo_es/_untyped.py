"""Values in untyped positions (``Any``, ``object``, an unannotated field) must be JSON's own.

In a typed field the converter knows what to read back: ``bytes``, ``datetime``, ``tuple[...]``
round-trip. In an untyped one it reads back what JSON holds, so a ``bytes`` would come back as
a string, a ``tuple`` as a list and an ``int`` dict key as a string. Events are permanent
history: such a value is refused at append, with the field and the fix, never changed silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

__all__ = ["UntypedValueError", "configure_untyped", "json_native"]

C = TypeVar("C", bound=cattrs.Converter)
_SCALARS = frozenset({str, int, bool, type(None)})


class UntypedValueError(TypeError):
    """A value with no exact JSON form in an untyped position; ``path`` locates it within the field."""

    def __init__(self, value: Any, path: str, *, key: bool = False) -> None:
        super().__init__(type(value).__name__, path)
        self.value = value
        self.path = path
        self.key = key

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
    return converter


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


def untyped_field(converter: cattrs.Converter, value: Any, prefix: str = "") -> tuple[str, str]:
    """Where in attrs instance ``value`` an untyped value is refused: the dotted field, the path within it.

    ``("", "")`` when no field of ``value`` is refused.
    """
    if not attrs.has(type(value)):
        return "", ""
    for field in attrs.fields(type(value)):
        name, item = f"{prefix}{field.name}", getattr(value, field.name)
        nested = untyped_field(converter, item, f"{name}.")
        if nested[0]:
            return nested
        if _refused(converter, item, Any if field.type is None else field.type):
            return name, _path_within(item)
    return "", ""


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
