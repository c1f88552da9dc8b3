"""The contract suites' own event type and stream helpers, kept out of the global registry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ..domain.events import EventRegistry, event

__all__ = ["Noted", "contract_registry", "notes", "raised", "stream"]

E = TypeVar("E", bound=BaseException)

contract_registry = EventRegistry()
"""The contract's own event types, kept out of the global registry."""


@event(name="ContractNoted", registry=contract_registry)
@attrs.frozen
class Noted:
    """A small event for the contract suite."""

    text: str
    number: int = 0


def stream() -> tuple[str, str]:
    """A fresh (aggregate id, aggregate type) pair."""
    return f"contract-{uuid.uuid4()}", "ContractStream"


def notes(count: int, *, prefix: str = "note") -> list[Noted]:
    """``count`` numbered events."""
    return [Noted(f"{prefix} {n}", n) for n in range(1, count + 1)]


def raised(error_type: type[E], call: Callable[[], Any]) -> E:
    """The ``error_type`` error that ``call()`` raises; AssertionError when it raises none."""
    try:
        call()
    except error_type as error:
        return error
    raise AssertionError(f"{call} raised no {error_type.__name__}")
