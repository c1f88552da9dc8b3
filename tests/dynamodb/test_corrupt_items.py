"""Corrupt or foreign items reach users as named errors (CorruptItemError), from every reader.

Items are corrupted by writing them with the raw client, as a buggy writer or a manual edit
would; the property test corrupts items in memory in every way hypothesis finds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamo_es import DynamoDBEventStore, DynamoESError, EventSerializer, EventStoreSettings, NewEvent, Repository
from dynamo_es.dynamodb import EventItemCodec, event_model, read_lambda_event
from dynamo_es.exceptions import CorruptItemError

from .conftest import Deposited, Wallet

CODEC = EventItemCodec(event_model(EventStoreSettings()))
SERIALIZER = EventSerializer()


def good_item(aggregate_id: str = "w-1", version: int = 1) -> dict[str, Any]:
    record = SERIALIZER.encode(
        NewEvent(Deposited(5)), aggregate_type="Wallet", aggregate_id=aggregate_id, version=version
    )
    return CODEC.encode(record)


CORRUPTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "no eventData": lambda item: item.pop("eventData"),
    "no eventType": lambda item: item.pop("eventType"),
    "no eventId": lambda item: item.pop("eventId"),
    "no version": lambda item: item.pop("version"),
    "no aggregateId": lambda item: item.pop("aggregateId"),
    "no timestamp": lambda item: item.pop("timestamp"),
    "binary eventData": lambda item: item.update(eventData={"B": "eHk="}),
    "string version": lambda item: item.update(version={"S": "1"}),
    "version disagrees with sk": lambda item: item.update(version={"N": "7"}),
    "truncated eventData": lambda item: item.update(eventData={"S": item["eventData"]["S"][:-5]}),
}


@pytest.mark.ddblocal
class TestEveryReader:
    @pytest.fixture
    def store(self, new_table: Callable[..., EventStoreSettings]) -> DynamoDBEventStore:
        """A table of its own: corrupt items must not reach other tests' scans, outboxes or streams."""
        return DynamoDBEventStore(new_table())

    @pytest.fixture
    def corrupt(self, store: DynamoDBEventStore) -> Callable[[str], str]:
        """Write a wallet whose second event is corrupted as named; return the wallet id."""

        def write(kind: str) -> str:
            wallet = Wallet.open(f"corrupt-{kind.replace(' ', '-')}-{id(kind)}")
            Repository(Wallet, store).save(wallet)
            item = good_item(wallet.id, 2)
            CORRUPTIONS[kind](item)
            store.client.put_item(TableName=store.settings.events_table_name, Item=item)
            return wallet.id

        return write

    @pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
    def test_load_and_repository_get_name_the_stream_version_and_attribute(
        self, store: DynamoDBEventStore, corrupt: Callable[[str], str], kind: str
    ) -> None:
        """load() and Repository.get raise a SerializationError naming stream and version; never KeyError."""
        wallet_id = corrupt(kind)
        for read in (lambda: store.load(wallet_id, "Wallet"), lambda: Repository(Wallet, store).get(wallet_id)):
            with pytest.raises(DynamoESError) as caught:
                read()
            assert f"Wallet:{wallet_id}" in str(caught.value) and "version 2" in str(caught.value)
        assert store.stream_version(wallet_id, "Wallet") == 2  # the sort key alone is sound

    def test_an_undispatched_outbox_item_without_event_id(
        self, new_table: Callable[..., EventStoreSettings], caplog: pytest.LogCaptureFixture
    ) -> None:
        """The outbox reader logs the item, naming stream, version and attribute, and goes on with the rest."""
        fresh = DynamoDBEventStore(new_table())
        fresh.ensure_table()
        item = good_item()
        del item["eventId"]
        fresh.client.put_item(TableName=fresh.settings.events_table_name, Item=item)
        fresh.client.put_item(TableName=fresh.settings.events_table_name, Item=good_item("w-2"))
        assert [e.stream_id for e in fresh.undispatched()] == ["Wallet:w-2"]
        assert "Wallet:w-1 version 1" in caplog.text and "'eventId' is missing" in caplog.text

    def test_codec_names_the_missing_attribute(self) -> None:
        """CorruptItemError carries the stream, the sort key and the attribute as data."""
        item = good_item()
        del item["eventId"]
        with pytest.raises(CorruptItemError) as caught:
            CODEC.decode(item)
        assert (caught.value.stream_id, caught.value.version, caught.value.attribute) == ("Wallet:w-1", 1, "eventId")

    def test_a_sort_key_of_a_digit_int_refuses_is_named_too(self) -> None:
        """'²' is a Unicode digit that int() refuses: the error names the stream, with version -1 (unreadable)."""
        item = good_item()
        item["sk"] = {"N": "²"}
        with pytest.raises(CorruptItemError) as caught:
            CODEC.decode(item)
        assert (caught.value.stream_id, caught.value.version) == ("Wallet:w-1", -1)

    def test_the_stream_decoder(self) -> None:
        """A stream record whose image is corrupt becomes a change carrying CorruptItemError, naming its stream."""
        item = good_item()
        item["version"] = {"S": "1"}
        record = {"eventName": "INSERT", "dynamodb": {"NewImage": item, "SequenceNumber": "1", "Keys": {}}}
        (change,) = read_lambda_event({"Records": [record]}).changes
        assert isinstance(change.error, CorruptItemError)
        assert "'version' is not of type N" in str(change.error)
        assert (change.event.stream_id, change.event.version, change.event.event) == ("Wallet:w-1", 1, None)


def corrupted(item: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    broken = copy.deepcopy(item)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(broken) or ["pk"]))
        action = data.draw(st.sampled_from(["drop", "retype", "truncate", "garbage"]))
        if action == "drop":
            broken.pop(name, None)
        elif action == "retype":
            broken[name] = data.draw(
                st.sampled_from([{"S": "x"}, {"N": "1.5"}, {"B": "eA=="}, {"BOOL": True}, {}, "x"])
            )
        elif action == "truncate" and name in broken and isinstance(broken[name], dict):
            broken[name] = {k: v[: len(v) // 2] if isinstance(v, str) else v for k, v in broken[name].items()}
        else:
            broken[name] = {"S": data.draw(st.text(max_size=20))}
    return broken


class TestAnyCorruption:
    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_any_corruption_yields_a_named_error_or_a_sound_event(self, data: st.DataObject) -> None:
        """Attributes removed, retyped, truncated or replaced: decoding raises only DynamoESError subclasses."""
        item = corrupted(good_item(), data)
        try:
            stored = SERIALIZER.decode(CODEC.decode(item))
        except DynamoESError:
            return
        assert isinstance(stored.version, int) and isinstance(stored.stream_id, str)  # what survived is well-formed
