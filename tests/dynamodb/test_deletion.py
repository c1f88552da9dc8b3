"""Deleting streams on DynamoDB Local: what read models see, through Streams and through Lambda, and the items left."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    InMemoryCheckpointStore,
    Projection,
    RawEventSerializer,
    Repository,
    StreamDeleted,
    StreamDeletion,
)
from dynamo_es.dynamodb import lambda_handler
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.exceptions import EventStoreError, InvalidStreamError, StreamDeletedError, StreamTruncatedError

from .conftest import Deposited, MakeProjection, Wallet, balance_delta, capture_records, lambda_record

pytestmark = pytest.mark.ddblocal

WALLET = Wallet.aggregate_type


@attrs.define
class Balances:
    """A read model that drops a wallet when its stream is deleted."""

    wallet_ids: set[str]
    balances: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))

    def __call__(self, change: Change) -> None:
        wallet_id = change.event.aggregate_id
        if wallet_id not in self.wallet_ids:
            return
        if isinstance(change.event.event, StreamDeleted):
            self.balances.pop(wallet_id, None)
        else:
            self.balances[wallet_id] += balance_delta(change)


def saved_wallets(wallets: Repository[Wallet], count: int) -> list[str]:
    ids = [f"del-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    for wallet_id in ids:
        wallet = Wallet.open(wallet_id)
        wallet.deposit(5)
        wallet.deposit(7)
        wallets.save(wallet)
    return ids


def items_of(store: DynamoDBEventStore, wallet_id: str) -> list[dict[str, Any]]:
    """Every item of the wallet's partition, read raw (a strongly consistent Query)."""
    client, settings = store.connection.client, store.settings
    response = client.query(
        TableName=settings.events_table_name,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": settings.partition_key_attribute},
        ExpressionAttributeValues={":pk": {"S": f"{WALLET}:{wallet_id}"}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


def test_a_read_model_fed_through_streams_ends_without_the_deleted_aggregate(
    make_projection: MakeProjection, store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """The stream's records (events, then StreamDeleted) leave the read model without the deleted wallet."""
    kept, gone = saved_wallets(wallets, 2)
    model = Balances({kept, gone})
    checkpoints = DynamoDBCheckpointStore(store.settings)
    name = f"deleting-{uuid.uuid4().hex[:8]}"
    make_projection(name, model, checkpoints, store).run(stop_when_idle=True)
    assert model.balances == {kept: 12, gone: 12}
    store.delete_stream(gone, WALLET, reason="closed")
    make_projection(name, model, checkpoints, store).run(stop_when_idle=True)
    assert model.balances == {kept: 12}


def test_lambda_applies_the_deletion_without_filling_the_deleted_gap(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """A handler that never saw the wallet's events gets only the deletion's records: it applies StreamDeleted."""
    (gone,) = saved_wallets(wallets, 1)
    model = Balances({gone})
    model.balances[gone] = 12  # derived before, from events whose records have left the stream
    records = capture_records(store, lambda: store.delete_stream(gone, WALLET))
    handler = lambda_handler(Projection("lambda-deleting", model, InMemoryCheckpointStore(), store))
    response = handler({"Records": [lambda_record(record) for record in records]}, None)
    assert response == {"batchItemFailures": []}
    assert model.balances == {}
    assert sorted(record["eventName"] for record in records) == ["INSERT", "MODIFY", "REMOVE", "REMOVE"]


def test_what_is_left_is_two_small_marks(store: DynamoDBEventStore, wallets: Repository[Wallet]) -> None:
    """After a deletion the partition holds only the marks at version 1 and after the last; neither is in the outbox."""
    (gone,) = saved_wallets(wallets, 1)
    store.delete_stream(gone, WALLET)
    items = items_of(store, gone)
    assert [(item["sk"]["N"], item["eventType"]["S"]) for item in items] == [
        ("1", "$StreamDeleted"),
        ("4", "$StreamDeleted"),
    ]
    assert all("outboxPending" not in item and item["isDispatched"]["BOOL"] for item in items)
    with pytest.raises(StreamDeletedError):
        wallets.get(gone)


def test_a_deletion_cut_short_is_finished_by_the_next_call(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """Sealed with events left (a crash between transactions): it loads as deleted; the next call removes the rest."""
    (gone,) = saved_wallets(wallets, 1)
    wallet = wallets.get(gone)
    for amount in range(150):
        wallet.deposit(amount + 1)
    wallets.save(wallet)  # 153 events
    calls = {"deletes": 0}

    def crash_on_the_second_deletion(params: dict[str, Any], **_: Any) -> None:
        if any("Delete" in item for item in params["TransactItems"]):
            calls["deletes"] += 1
            if calls["deletes"] == 2:
                raise KeyboardInterrupt  # the process stops between two transactions

    events = store.client.meta.events
    events.register("provide-client-params.dynamodb.TransactWriteItems", crash_on_the_second_deletion)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.delete_stream(gone, WALLET)
    finally:
        events.unregister("provide-client-params.dynamodb.TransactWriteItems", crash_on_the_second_deletion)
    assert len(items_of(store, gone)) == 2 + 153 - 1 - 99  # marks, and the events past the first 99 Deletes
    with pytest.raises(StreamDeletedError):
        wallets.get(gone)
    finished = store.delete_stream(gone, WALLET)
    assert (finished.already_deleted, finished.removed, finished.last_version) == (True, 53, 153)
    assert len(items_of(store, gone)) == 2


def test_the_async_store_deletes_the_same_way(store: DynamoDBEventStore, wallets: Repository[Wallet]) -> None:
    """AsyncDynamoDBEventStore.delete_stream seals and removes; the sync store then loads the stream as deleted."""
    (gone,) = saved_wallets(wallets, 1)

    async def delete() -> StreamDeletion:
        async with AsyncDynamoDBEventStore(store.settings, serializer=store.serializer) as aio:
            deletion = await aio.delete_stream(gone, WALLET, expected_version=3)
            with pytest.raises(StreamDeletedError):
                await aio.load(gone, WALLET)
            return deletion

    deletion = asyncio.run(delete())
    assert (deletion.last_version, deletion.removed) == (3, 3)
    with pytest.raises(StreamDeletedError):
        store.load(gone, WALLET)


def during_the_writers_transaction(writer: DynamoDBEventStore, number: int, action: Any) -> Any:
    """Run ``action`` just before the writer sends its ``number``-th TransactWriteItems (a real race, made exact)."""
    calls = {"count": 0}

    def interleave(**_: Any) -> None:
        calls["count"] += 1
        if calls["count"] == number:
            action()

    writer.client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", interleave)
    return interleave


class TestRacesWithDeletion:
    """Writers whose checks ran before a deletion: each transaction checks again, so none lands after it."""

    def test_a_stale_full_append_does_not_land_after_the_seal(self, store: DynamoDBEventStore) -> None:
        """100 events after a stale version 1 of 150: the deletion runs in between; a conflict, nothing lands.

        Before each transaction checked inside itself, a full one was checked by a read first, and
        its Puts into the freed versions 2-101 succeeded after the seal.
        """
        stream = f"race-{uuid.uuid4().hex[:8]}"
        store.append(stream, "Note", [Deposited(n) for n in range(150)], 0).raise_for_failure()
        writer = DynamoDBEventStore(store.settings)
        during_the_writers_transaction(writer, 1, lambda: store.delete_stream(stream, "Note"))
        result = writer.append(stream, "Note", [Deposited(n) for n in range(100)], 1)
        assert result.conflict and not result.success
        assert [item["eventType"]["S"] for item in items_of_stream(store, f"Note:{stream}")] == ["$StreamDeleted"] * 2

    def test_reuse_id_does_not_let_an_append_in_flight_continue(self, store: DynamoDBEventStore) -> None:
        """A 150-event append of a new stream: a reuse_id deletion between its transactions; the second is refused."""
        stream = f"race-{uuid.uuid4().hex[:8]}"
        writer = DynamoDBEventStore(store.settings)
        during_the_writers_transaction(writer, 2, lambda: store.delete_stream(stream, "Note", reuse_id=True))
        result = writer.append(stream, "Note", [Deposited(n) for n in range(150)], 0)
        assert result.conflict and result.new_version == 100  # the first 100 were written, then deleted
        assert items_of_stream(store, f"Note:{stream}") == []

    def test_an_id_reused_and_deleted_again_is_deleted_again(self, store: DynamoDBEventStore) -> None:
        """Delete with reuse_id, write the id anew, delete again: the second deletion is not taken for a retry."""
        stream = f"race-{uuid.uuid4().hex[:8]}"
        for _ in range(2):
            store.append(stream, "Note", [Deposited(n) for n in range(3)], 0).raise_for_failure()
            deletion = store.delete_stream(stream, "Note", reuse_id=True)
            assert deletion.reusable and items_of_stream(store, f"Note:{stream}") == []

    def test_a_stream_without_version_1_is_an_error_not_a_retry_loop(self, store: DynamoDBEventStore) -> None:
        """Version 1 deleted by hand: delete_stream raises EventStoreError saying so, after one seal attempt."""
        stream = f"race-{uuid.uuid4().hex[:8]}"
        store.append(stream, "Note", [Deposited(n) for n in range(3)], 0).raise_for_failure()
        store.connection.client.delete_item(
            TableName=store.settings.events_table_name, Key={"pk": {"S": f"Note:{stream}"}, "sk": {"N": "1"}}
        )
        with pytest.raises(EventStoreError, match="version 1 is missing"):
            store.delete_stream(stream, "Note")


def items_of_stream(store: DynamoDBEventStore, stream_id: str) -> list[dict[str, Any]]:
    response = store.connection.client.query(
        TableName=store.settings.events_table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": stream_id}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


def before_the_writers_put(writer: DynamoDBEventStore, action: Any) -> None:
    """Run ``action`` once, just before the writer's next PutItem (a truncation's mark)."""
    done: list[bool] = []

    def interleave(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    writer.client.meta.events.register("provide-client-params.dynamodb.PutItem", interleave)


class TestRacesWithTruncation:
    def test_racing_truncations_keep_the_later_first_version(self, store: DynamoDBEventStore) -> None:
        """Truncating to 50 while another truncates to 80: the mark says 80, and a load from 50 raises."""
        stream = f"trunc-{uuid.uuid4().hex[:8]}"
        store.append(stream, "Note", [Deposited(n) for n in range(90)], 0).raise_for_failure()
        writer = DynamoDBEventStore(store.settings)
        before_the_writers_put(writer, lambda: store.truncate_stream(stream, "Note", 80))
        assert writer.truncate_stream(stream, "Note", 50).first_version == 80
        assert [e.version for e in store.load(stream, "Note", from_version=80)][:1] == [80]
        with pytest.raises(StreamTruncatedError):
            store.load(stream, "Note", from_version=50)

    def test_a_stale_truncation_does_not_touch_a_reused_id(self, store: DynamoDBEventStore) -> None:
        """Deleted with reuse_id and written anew before the truncation's Put: it is refused, the new stream intact."""
        stream = f"trunc-{uuid.uuid4().hex[:8]}"
        store.append(stream, "Note", [Deposited(n) for n in range(60)], 0).raise_for_failure()
        writer = DynamoDBEventStore(store.settings)

        def reuse() -> None:
            store.delete_stream(stream, "Note", reuse_id=True)
            store.append(stream, "Note", [Deposited(n) for n in range(3)], 0).raise_for_failure()

        before_the_writers_put(writer, reuse)
        with pytest.raises(InvalidStreamError, match="it ends at 3"):
            writer.truncate_stream(stream, "Note", 50)
        assert [e.version for e in store.load(stream, "Note")] == [1, 2, 3]

    def test_a_raw_serializer_reads_the_mark_too(self, store: DynamoDBEventStore) -> None:
        """With RawEventSerializer (the CLI's), truncating again finds the mark: nothing removed, never lowered."""
        stream = f"trunc-{uuid.uuid4().hex[:8]}"
        store.append(stream, "Note", [Deposited(n) for n in range(12)], 0).raise_for_failure()
        raw = DynamoDBEventStore(store.settings, serializer=RawEventSerializer())
        assert raw.truncate_stream(stream, "Note", 10).removed == 9
        again = raw.truncate_stream(stream, "Note", 5)
        assert (again.first_version, again.removed) == (10, 0)
