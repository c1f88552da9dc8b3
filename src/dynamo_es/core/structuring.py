"""Building attrs instances without their ``__init__``, and a quicker structure hook on top.

A frozen attrs class's ``__init__`` sets each field through ``object.__setattr__`` and takes
keyword arguments only (for these classes): for the ten fields of a stored event that is about
two microseconds, as much as decoding its payload. `positional_builder` makes the same object
through the slots' own descriptors, fields given in order, at about half the cost.

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

__all__ = ["configure_quick_structure", "positional_builder", "quick_structure_hook", "structure_many_of"]

T = TypeVar("T")
_PRIMITIVES = (int, str, float, bool)
Hook = Callable[[Mapping[str, Any], Any], Any]


def positional_builder(cls: type[T]) -> Callable[..., T]:
    """``build(*values)``: an instance of ``cls`` with its fields set in declaration order.

    Raises:
        TypeError: ``cls`` is not a slotted attrs class, or a field has a validator or converter,
            or its ``__init__`` would do more than set the fields (a pre- or post-init, a cached hash).
    """
    names = _check_buildable(cls)
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    lines = [f"def build({', '.join(names)}):", "    instance = new(cls)"]
    lines += [f"    set_{name}(instance, {name})" for name in names]
    lines.append("    return instance")
    exec("\n".join(lines), namespace)  # noqa: S102  # generated from the class's own field names, as attrs does
    build: Callable[..., T] = namespace["build"]
    return build


def _check_buildable(cls: type[Any]) -> list[str]:
    """``cls``'s field names, if setting its slots in order makes what its ``__init__`` makes.

    Raises:
        TypeError: as `positional_builder()` says.
    """
    fields = attrs.fields(cls)
    names = [field.name for field in fields]
    if not getattr(cls, "__slots__", None) or _more_than_fields(cls, names):
        raise TypeError(f"{cls.__qualname__} is not a plain slotted attrs class")
    if any(field.validator is not None or field.converter is not None for field in fields):
        raise TypeError(f"{cls.__qualname__} validates or converts a field: use its __init__")
    return names


def _more_than_fields(cls: type[Any], names: list[str]) -> bool:
    """Whether ``__init__`` does more than set the fields: a pre- or post-init, or a slot of its own (a cached hash)."""
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return True
    slots = {slot for klass in cls.__mro__ for slot in getattr(klass, "__slots__", ())}
    return bool(slots - set(names) - {"__weakref__", "__dict__"})


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
        _check_buildable(cls)
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
    lines += [
        "def structure_many(documents):",
        "    built = []",
        "    add = built.append",
        "    try:",
        "        for o in documents:",
        f"            if len(o) != {len(fields)}:",
        "                return None",
        *(f"            {read}" for read in reads),
        f"            if not ({' and '.join(checks) or 'True'}):",
        "                return None",
        "            instance = new(cls)",
        *(f"            {each}" for each in sets),
        "            add(instance)",
        "    except Exception:",
        "        return None",
        "    return built",
    ]
    exec("\n".join(lines), namespace)  # noqa: S102  # generated from the class's own field names, as cattrs does
    hook: Hook = namespace["structure"]
    hook.__qualname__ = f"quick_structure_{cls.__qualname__}"
    setattr(hook, _MANY, namespace["structure_many"])  # an attribute mypy does not know functions have
    return hook


def structure_many_of(hook: Hook) -> Callable[[list[Any]], list[Any] | None] | None:
    """``hook``'s batch form, if it is a quick hook: every document through the fast path, or None if one misses it.

    One call for a batch of one class: the per-document call and its checks are paid once.
    """
    many: Callable[[list[Any]], list[Any] | None] | None = getattr(hook, _MANY, None)
    return many


_MANY = "__dynamo_es_structure_many__"


def _passes_through(converter: Any, primitive: type[Any]) -> bool:
    """Whether the converter structures ``primitive`` by calling it (a value of that exact type comes back as is)."""
    hook = converter.get_structure_hook(primitive)
    return getattr(hook, "__func__", hook) is cattrs.BaseConverter._structure_call
