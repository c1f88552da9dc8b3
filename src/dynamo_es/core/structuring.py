"""A quicker structure hook for plain attrs classes, with cattrs' own hook behind it.

cattrs' generated hook for an attrs class collects the fields into a dict (each in its own
``try`` for detailed errors) and calls ``cls(**fields)``: about 1.5 µs for two fields, as much
as parsing the event's JSON. For a document that holds exactly the class's fields, primitive
fields of their exact type (``int``, ``str``, ``float``, ``bool``, which cattrs would pass
through unchanged) and the others structured by the converter's own hook for their type, the
hook here builds the instance positionally instead (`positional_builder`). Anything else (a
missing or extra key, a value of another type, a failing field) is handed to cattrs' hook,
which gives the same result or raises its own detailed error. So the result is always the one
cattrs would give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs

from .decoding import positional_builder

__all__ = ["configure_quick_structure", "quick_structure_hook"]

T = TypeVar("T")
_PRIMITIVES = (int, str, float, bool)
Hook = Callable[[Mapping[str, Any], Any], Any]


def configure_quick_structure(converter: cattrs.Converter) -> None:
    """Structure the plain attrs classes ``converter`` meets through `quick_structure_hook()`.

    Hooks registered later for a class (``register_structure_hook``) still take precedence.
    """
    converter.register_structure_hook_factory(_is_attrs_class, lambda cls: quick_structure_hook(cls, converter))


def _is_attrs_class(cls: Any) -> bool:
    return isinstance(cls, type) and attrs.has(cls) and not getattr(cls, "__parameters__", ())


def quick_structure_hook(cls: type[T], converter: cattrs.Converter) -> Hook:
    """The structure hook for ``cls``: cattrs' own, behind a positional fast path when ``cls`` allows one."""
    careful: Hook = converter.gen_structure_attrs_fromdict(cls)  # resolves string annotations too
    fields = attrs.fields(cls)  # type: ignore[arg-type]  # an attrs class: checked by the predicate
    if converter.use_alias or converter.type_overrides or not all(field.init for field in fields):
        return careful
    try:
        positional_builder(cls)  # the checks that building without __init__ gives what __init__ would
    except TypeError:
        return careful
    return _generated(cls, fields, careful, converter)


def _generated(cls: type[Any], fields: tuple[attrs.Attribute[Any], ...], careful: Hook, converter: Any) -> Hook:
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls, "careful": careful}
    reads, checks, sets = [], [], []
    for index, field in enumerate(fields):
        reads.append(f"v{index} = o[{field.name!r}]")
        namespace[f"s{index}"], namespace[f"t{index}"] = getattr(cls, field.name).__set__, field.type
        if field.type in _PRIMITIVES and _passes_through(converter, field.type):
            checks.append(f"type(v{index}) is t{index}")
            sets.append(f"s{index}(instance, v{index})")
        else:
            namespace[f"h{index}"] = converter.get_structure_hook(field.type)
            sets.append(f"s{index}(instance, h{index}(v{index}, t{index}))")
    lines = [
        "def structure(o, _):",
        "    try:",
        f"        if len(o) == {len(fields)}:",
        *(f"            {read}" for read in reads),
        f"            if {' and '.join(checks) or 'True'}:",
        "                instance = new(cls)",
        *(f"                {each}" for each in sets),
        "                return instance",
        "    except Exception:",
        "        pass",
        "    return careful(o, _)",
    ]
    exec("\n".join(lines), namespace)  # noqa: S102  # generated from the class's own field names, as cattrs does
    hook: Hook = namespace["structure"]
    hook.__qualname__ = f"quick_structure_{cls.__qualname__}"
    return hook


def _passes_through(converter: Any, primitive: type[Any]) -> bool:
    """Whether the converter structures ``primitive`` by calling it (a value of that exact type comes back as is)."""
    hook = converter.get_structure_hook(primitive)
    return getattr(hook, "__func__", hook) is cattrs.BaseConverter._structure_call
