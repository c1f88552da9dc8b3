"""Size accounting shared by the stores (the DynamoDB limits themselves are tested on DynamoDB Local)."""

from __future__ import annotations

import json

import pytest

from dynamo_es._store import _json_length, _utf8_length, plan_transactions


@pytest.mark.parametrize(
    "text",
    ["", "eyJhIjoxfQ==", '{"correlationId":"c"}', "back\\slash", "naïve café", "emoji 🎉", "tab\there", "\x00\x1f"],
)
def test_json_length_is_what_json_dumps_produces(text: str) -> None:
    """The fast length of a JSON string literal equals json.dumps', escapes and non-ASCII included."""
    assert _json_length(text) == len(json.dumps(text))
    assert _utf8_length(text) == len(text.encode())


def test_plan_transactions_respects_items_bytes_and_the_first_check() -> None:
    """Batches stay within the item capacity (one less in the first) and the byte budget."""
    records = list(range(25))
    batches = plan_transactions(
        records,  # type: ignore[arg-type]
        capacity=10,
        first_capacity=9,
        max_bytes=35,
        size_of=lambda _: 5,  # 7 per transaction by bytes
    )
    assert [len(b) for b in batches] == [7, 7, 7, 4]
    by_items = plan_transactions(records, capacity=10, first_capacity=9, max_bytes=10**6, size_of=lambda _: 1)  # type: ignore[arg-type]
    assert [len(b) for b in by_items] == [9, 10, 6]
