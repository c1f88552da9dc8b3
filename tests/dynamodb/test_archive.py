"""Archiving streams on DynamoDB Local: the items in both tables, moves cut short, and what read models see."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    InMemoryCheckpointStore,
    Projection,
    Repository,
)
from dynamo_es.domain.lifecycle import StreamArchived
from dynamo_es.dynamodb import lambda_handler
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.exceptions import EventStoreError, StreamArchivedError

from .conftest import Deposited, MakeProjection, Wallet, balance_delta, capture_records, lambda_record

pytestmark = pytest.mark.ddblocal

WALLET = Wallet.aggregate_type
TRANSACTIONS = "provide-client-params.dynamodb.TransactWriteItems"


@attrs.define
class Balances:
    """A read model of wallet balances that records every event type it was handed."""

    wallet_ids: set[str]
    balances: dict[str, int] = attrs.field(factory=dict)
    seen: list[str] = attrs.field(factory=list)

    def __call__(self, change: Change) -> None:
        if change.event.aggregate_id in self.wallet_ids:
            self.seen.append(change.event.event_type)
            wallet_id = change.event.aggregate_id
            self.balances[wallet_id] = self.balances.get(wallet_id, 0) + balance_delta(change)


def saved_wallet(wallets: Repository[Wallet], deposits: int) -> str:
    wallet = Wallet.open(f"arc-{uuid.uuid4().hex[:10]}")
    for amount in range(1, deposits + 1):
        wallet.deposit(amount)
    wallets.save(wallet)
    return wallet.id


def items_in(store: DynamoDBEventStore, table: str, wallet_id: str) -> list[dict[str, Any]]:
    """Every item of the wallet's partition in ``table``, read raw and strongly consistent, all pages."""
    paginator = store.connection.client.get_paginator("query")
    pages = paginator.paginate(
        TableName=table,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": store.settings.partition_key_attribute},
        ExpressionAttributeValues={":pk": {"S": f"{WALLET}:{wallet_id}"}},
        ConsistentRead=True,
    )
    return [item for page in pages for item in page["Items"]]


def crash_on(store: DynamoDBEventStore, number: int) -> Any:
    """Make the ``number``-th TransactWriteItems of ``store`` stop the process before it is sent; returns the hook."""
    calls = {"count": 0}

    def crash(**_: Any) -> None:
        calls["count"] += 1
        if calls["count"] == number:
            raise KeyboardInterrupt  # the process stops between two transactions

    store.client.meta.events.register(TRANSACTIONS, crash)
    return crash


def test_the_archive_table_holds_the_items_unchanged_and_the_events_table_two_marks(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """Each archived item equals the original byte for byte; the events table keeps StreamArchived at 1 and N+1."""
    wallet_id = saved_wallet(wallets, 120)
    originals = items_in(store, store.settings.events_table_name, wallet_id)
    archival = store.archive_stream(wallet_id, WALLET)
    assert (archival.last_version, archival.moved) == (121, 121)
    assert items_in(store, store.settings.archive_table_name, wallet_id) == originals
    marks = items_in(store, store.settings.events_table_name, wallet_id)
    assert [(m["sk"]["N"], m["eventType"]["S"]) for m in marks] == [
        ("1", "$StreamArchived"),
        ("122", "$StreamArchived"),
    ]
    assert all(mark["isDispatched"]["BOOL"] for mark in marks)  # the outbox never publishes a mark
    with pytest.raises(StreamArchivedError):
        wallets.get(wallet_id)
    store.restore_stream(wallet_id, WALLET)
    assert items_in(store, store.settings.events_table_name, wallet_id) == originals
    assert items_in(store, store.settings.archive_table_name, wallet_id) == []


def test_a_writer_that_appends_before_the_seal_lands_is_archived_with_no_second_read(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """Writers take the seal's slot twice: the seal goes after each (DynamoDB returns the item), with no re-read."""
    wallet_id = saved_wallet(wallets, 3)
    writer = DynamoDBEventStore(store.settings)  # another process: its requests are not the archiver's
    calls: list[str] = []

    def interleave(**_: Any) -> None:
        calls.append("transaction")
        if calls.count("transaction") <= 2:  # a writer appends just before each of the first two seals is sent
            version = writer.stream_version(wallet_id, WALLET)
            writer.append(wallet_id, WALLET, [Deposited(1)], version).raise_for_failure()

    def count(**_: Any) -> None:
        calls.append("query")

    events = store.client.meta.events
    events.register(TRANSACTIONS, interleave)
    events.register("provide-client-params.dynamodb.Query", count)
    try:
        archival = store.archive_stream(wallet_id, WALLET)
    finally:
        events.unregister(TRANSACTIONS, interleave)
        events.unregister("provide-client-params.dynamodb.Query", count)
    assert calls[:5] == ["query", "query", "transaction", "transaction", "transaction"]
    assert (archival.last_version, archival.moved) == (6, 6)
    assert [e.version for e in store.load_archived(wallet_id, WALLET)] == [1, 2, 3, 4, 5, 6]


def test_an_archiving_cut_short_loads_as_archived_and_is_finished_by_the_next_call(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """Stopped after the seal and one move: every version is in one table; load_archived says so; a rerun finishes."""
    wallet_id = saved_wallet(wallets, 150)  # 151 events: the seal moves 1, then moves of 49, 49, 49, 3
    hook = crash_on(store, 3)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.archive_stream(wallet_id, WALLET)
    finally:
        store.client.meta.events.unregister(TRANSACTIONS, hook)
    live = items_in(store, store.settings.events_table_name, wallet_id)
    archived = items_in(store, store.settings.archive_table_name, wallet_id)
    assert (len(live), len(archived)) == (2 + 151 - 1 - 49, 1 + 49)
    with pytest.raises(StreamArchivedError):
        wallets.get(wallet_id)
    with pytest.raises(EventStoreError, match="not whole"):
        store.load_archived(wallet_id, WALLET)
    finished = store.archive_stream(wallet_id, WALLET)
    assert (finished.already, finished.moved, finished.last_version) == (True, 101, 151)
    assert len(store.load_archived(wallet_id, WALLET)) == 151


def test_a_restore_cut_short_is_finished_by_the_next_call(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """Stopped after one move back: the stream is still archived and takes no append; restoring again finishes."""
    wallet_id = saved_wallet(wallets, 80)
    before = store.load(wallet_id, WALLET)
    store.archive_stream(wallet_id, WALLET)
    hook = crash_on(store, 2)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.restore_stream(wallet_id, WALLET)
    finally:
        store.client.meta.events.unregister(TRANSACTIONS, hook)
    with pytest.raises(StreamArchivedError):
        store.load(wallet_id, WALLET)
    assert store.append(wallet_id, WALLET, [StreamArchived(0)], 81).conflict
    with pytest.raises(EventStoreError, match="not whole"):
        store.load_archived(wallet_id, WALLET)
    finished = store.restore_stream(wallet_id, WALLET)
    assert (finished.already, finished.moved) == (False, 81 - 1 - 49 + 1)
    assert store.load(wallet_id, WALLET) == before


def test_a_stale_restore_after_another_finished_changes_nothing(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """A restorer whose last transaction runs after another restore and an append: the append stays.

    Both restorers' last transactions carry the same idempotency token (from the archive's mark),
    so DynamoDB answers the stale one as the request already done, and it changes nothing.
    """
    wallet_id = saved_wallet(wallets, 3)
    store.archive_stream(wallet_id, WALLET)
    other = DynamoDBEventStore(store.settings)
    wallet: dict[str, Wallet] = {}

    def restore_and_append_first(params: dict[str, Any], **_: Any) -> None:
        if (
            any(
                "Put" in item
                and item["Put"]["TableName"] == store.settings.events_table_name
                and item["Put"]["Item"]["sk"]["N"] == "1"
                for item in params["TransactItems"]
            )
            and not wallet
        ):
            other.restore_stream(wallet_id, WALLET)
            wallet["it"] = Repository(Wallet, other).get(wallet_id)
            wallet["it"].deposit(9)
            Repository(Wallet, other).save(wallet["it"])

    store.client.meta.events.register(TRANSACTIONS, restore_and_append_first)
    try:
        stale = store.restore_stream(wallet_id, WALLET)
    finally:
        store.client.meta.events.unregister(TRANSACTIONS, restore_and_append_first)
    assert not stale.archived and stale.last_version == 4
    assert [event.version for event in store.load(wallet_id, WALLET)] == [1, 2, 3, 4, 5]


def test_a_read_model_fed_through_streams_keeps_the_aggregate_and_its_next_event(
    make_projection: MakeProjection, store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """Archive, restore, deposit: the handler never sees a mark or an event twice, and applies the deposit after."""
    wallet_id = saved_wallet(wallets, 2)
    model = Balances({wallet_id})
    checkpoints = DynamoDBCheckpointStore(store.settings)
    name = f"archiving-{uuid.uuid4().hex[:8]}"
    make_projection(name, model, checkpoints, store).run(stop_when_idle=True)
    store.archive_stream(wallet_id, WALLET)
    store.restore_stream(wallet_id, WALLET)
    wallet = wallets.get(wallet_id)
    wallet.deposit(10)
    wallets.save(wallet)
    make_projection(name, model, checkpoints, store).run(stop_when_idle=True)
    assert model.balances == {wallet_id: 13}
    assert "$StreamArchived" not in model.seen and len(model.seen) == 4


def test_lambda_skips_the_marks_of_an_archive_round_trip(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """The records of archive, restore and a deposit, through lambda_handler: only the deposit is applied."""
    wallet_id = saved_wallet(wallets, 2)
    projection = Projection("lambda-archiving", Balances({wallet_id}), InMemoryCheckpointStore(), store)
    handler = lambda_handler(projection)
    model = projection.handler
    assert isinstance(model, Balances)
    model.balances[wallet_id] = 3  # derived before, from the events' own records

    def round_trip() -> None:
        store.archive_stream(wallet_id, WALLET)
        store.restore_stream(wallet_id, WALLET)
        wallet = wallets.get(wallet_id)
        wallet.deposit(10)
        wallets.save(wallet)

    records = capture_records(store, round_trip)
    projection.checkpoints.save_versions(projection.name, {f"{WALLET}:{wallet_id}": 3})
    assert handler({"Records": [lambda_record(record) for record in records]}, None) == {"batchItemFailures": []}
    assert model.balances == {wallet_id: 13} and model.seen == ["WalletDeposited"]


def test_the_async_store_archives_and_restores_the_same_way(
    store: DynamoDBEventStore, wallets: Repository[Wallet]
) -> None:
    """AsyncDynamoDBEventStore round trip: archived, loaded from the archive, restored; the sync store agrees."""
    wallet_id = saved_wallet(wallets, 3)
    before = store.load(wallet_id, WALLET)

    async def round_trip() -> None:
        async with AsyncDynamoDBEventStore(store.settings, serializer=store.serializer) as aio:
            assert (await aio.archive_stream(wallet_id, WALLET)).moved == 4
            with pytest.raises(StreamArchivedError):
                await aio.load(wallet_id, WALLET)
            assert await aio.load_archived(wallet_id, WALLET) == before
            with pytest.raises(StreamArchivedError):
                store.load(wallet_id, WALLET)
            assert (await aio.restore_stream(wallet_id, WALLET)).moved == 4

    asyncio.run(round_trip())
    assert store.load(wallet_id, WALLET) == before
