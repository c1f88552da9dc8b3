"""Size accounting and transaction planning (the DynamoDB limits themselves are tested on DynamoDB Local)."""

from __future__ import annotations

import json

import pytest

from dynamo_es import EncodedEvent
from dynamo_es.dynamodb.schema.limits import json_length, plan_transactions
from dynamo_es.ports.store import encoded_size


@pytest.mark.parametrize(
    "text",
    ["", "eyJhIjoxfQ==", '{"correlationId":"c"}', "back\\slash", "naïve café", "emoji 🎉", "tab\there", "\x00\x1f"],
)
def test_json_length_is_what_json_dumps_produces(text: str) -> None:
    """The fast length of a JSON string literal equals json.dumps', escapes and non-ASCII included."""
    assert json_length(text) == len(json.dumps(text))


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


def test_encoded_size_counts_utf8_bytes_of_the_values() -> None:
    """The store-neutral size the memory store checks counts UTF-8 bytes, not characters."""
    record = EncodedEvent(
        stream_id="A:1",
        aggregate_id="1",
        aggregate_type="A",
        version=12,
        event_id="e",
        event_type="T",
        timestamp="t",
        event_data="🎉",
        metadata="{}",
    )
    assert encoded_size(record) == len("A:1" + "1" + "A" + "e" + "T" + "t" + "{}") + 4 + len("12")
