"""DynamoDB's limits, and how an append is planned into transactions that respect them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ...core.serialization import EncodedEvent
from ...ports.store import MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS

__all__ = [
    "MAX_ITEM_BYTES",
    "MAX_TRANSACTION_BYTES",
    "MAX_TRANSACTION_ITEMS",
    "plan_transactions",
    "request_size",
]

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit (attribute names plus values)."""
_PUT_OVERHEAD_BYTES = 400
"""Per Put: attribute names, type tags, the condition expression and JSON punctuation, generously."""


def json_length(text: str) -> int:
    """The length of ``text`` as a JSON string literal, as botocore sends it (ASCII-escaped)."""
    if text.isascii() and text.isprintable():  # Base64, ids, timestamps: no copy, no escapes but " and \
        return len(text) + 2 + text.count('"') + text.count("\\")
    return len(json.dumps(text))


def request_size(record: EncodedEvent, table_name: str) -> int:
    """An upper estimate of the bytes one conditional Put of ``record`` adds to a request."""
    return sum(json_length(value) for value in record.texts()) + len(table_name) + _PUT_OVERHEAD_BYTES


def plan_transactions(
    records: Sequence[EncodedEvent],
    *,
    capacity: int,
    first_capacity: int,
    max_bytes: int,
    size_of: Callable[[EncodedEvent], int],
) -> list[list[EncodedEvent]]:
    """Split ``records`` into consecutive transactions within both item and byte budgets.

    The first transaction takes at most ``first_capacity`` events (it may carry a condition
    check too), later ones ``capacity``; each stays within ``max_bytes`` by ``size_of``.
    """
    batches: list[list[EncodedEvent]] = []
    current: list[EncodedEvent] = []
    current_bytes = 0
    room = max(1, first_capacity)
    for record in records:
        size = size_of(record)
        if current and (len(current) >= room or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes, room = [], 0, capacity
        current.append(record)
        current_bytes += size
    if current:
        batches.append(current)
    return batches
