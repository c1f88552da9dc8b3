"""Expiring temporary streams by DynamoDB's TTL, on DynamoDB Local: the items, loads, appends and read models.

Time passing is stood for by rewriting an item's expiry into the past, on a table of its own
without a stream (DynamoDB Local then removes such items itself, and its stream records of
those removals carry the eventName UNKNOWN_TO_SDK_VERSION; real DynamoDB Streams shows REMOVE
with TTL's ``userIdentity``). TTL's removals are stood for by Deletes whose REMOVE records carry
that ``userIdentity``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBEventStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    Projection,
    Repository,
    StreamDeleted,
    UnitOfWork,
)
from dynamo_es.domain.lifecycle import EXPIRED
from dynamo_es.dynamodb import lambda_handler
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.exceptions import ConfigurationError, StreamExpiredError
from dynamo_es.testing import DynamoDBLocal

from .conftest import Deposited, Wallet, capture_records, lambda_record

pytestmark = pytest.mark.ddblocal

WALLET = Wallet.aggregate_type
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@pytest.fixture
def temporary(store: DynamoDBEventStore) -> DynamoDBEventStore:
    """A store on the streams table whose Wallet streams expire a day after their first event (never expired here)."""
    return DynamoDBEventStore(store.settings, expire_after={WALLET: timedelta(days=1)})


@pytest.fixture
def expiring(new_table: Callable[..., EventStoreSettings]) -> DynamoDBEventStore:
    """The same on a table of its own without a stream: its items' expiries are moved into the past."""
    return DynamoDBEventStore(new_table(), expire_after={WALLET: timedelta(days=1)})


def items_of(store: DynamoDBEventStore, wallet_id: str) -> list[dict[str, Any]]:
    response = store.connection.client.query(
        TableName=store.settings.events_table_name,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": store.settings.partition_key_attribute},
        ExpressionAttributeValues={":pk": {"S": f"{WALLET}:{wallet_id}"}},
        ConsistentRead=True,
    )
    items: list[dict[str, Any]] = response["Items"]
    return items


def expire_now(store: DynamoDBEventStore, wallet_id: str) -> None:
    """Stand for the day passing: every item's expiry moves to a second ago."""
    for item in items_of(store, wallet_id):
        store.connection.client.update_item(
            TableName=store.settings.events_table_name,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET expiresAt = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
        )


def saved(temporary: DynamoDBEventStore, deposits: int) -> str:
    wallet = Wallet.open(f"ttl-{uuid.uuid4().hex[:10]}")
    for amount in range(1, deposits + 1):
        wallet.deposit(amount)
    Repository(Wallet, temporary).save(wallet)
    return wallet.id


def test_the_events_table_has_ttl_enabled_on_the_setting(store: DynamoDBEventStore) -> None:
    """The table the store creates has DynamoDB's TTL on ``ttl_attribute``."""
    described = store.connection.client.describe_time_to_live(TableName=store.settings.events_table_name)
    assert described["TimeToLiveDescription"]["AttributeName"] == store.settings.ttl_attribute
    assert described["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_every_item_of_a_temporary_stream_expires_at_once(temporary: DynamoDBEventStore) -> None:
    """Three appends over time: all items carry version 1's expiry, a day after it; other types carry none."""
    before = int(time.time())
    wallet_id = saved(temporary, 2)
    wallets = Repository(Wallet, temporary)
    for amount in (5, 6):
        wallet = wallets.get(wallet_id)
        wallet.deposit(amount)
        wallets.save(wallet)
    expiries = {item["expiresAt"]["N"] for item in items_of(temporary, wallet_id)}
    (expiry,) = expiries
    assert before + 86400 <= int(expiry) <= int(time.time()) + 86400
    temporary.append(f"other-{uuid.uuid4().hex[:6]}", "Note", [Deposited(1)], 0).raise_for_failure()
    assert len(items_of(temporary, wallet_id)) == 5


def test_an_expired_stream_loads_as_expired_and_takes_no_append(expiring: DynamoDBEventStore) -> None:
    """Past its expiry (items not removed yet): load, get and exists say so; an append raises, nothing lands."""
    wallet_id = saved(expiring, 2)
    expire_now(expiring, wallet_id)
    with pytest.raises(StreamExpiredError) as expired:
        expiring.load(wallet_id, WALLET)
    assert expired.value.stream_id == f"{WALLET}:{wallet_id}"
    with pytest.raises(StreamExpiredError):
        expiring.load(wallet_id, WALLET, from_version=2)
    assert not Repository(Wallet, expiring).exists(wallet_id)
    with pytest.raises(StreamExpiredError):
        expiring.append(wallet_id, WALLET, [Deposited(9)], 3)
    assert len(items_of(expiring, wallet_id)) in (0, 3)  # DynamoDB Local may have removed them already


def test_a_partly_removed_stream_reads_as_expired(temporary: DynamoDBEventStore) -> None:
    """TTL removed version 1 first (any order is possible): the rest still reads as expired, from any version."""
    wallet_id = saved(temporary, 3)
    temporary.connection.client.delete_item(
        TableName=temporary.settings.events_table_name, Key={"pk": {"S": f"{WALLET}:{wallet_id}"}, "sk": {"N": "1"}}
    )
    with pytest.raises(StreamExpiredError):
        Repository(Wallet, temporary).get(wallet_id)
    with pytest.raises(StreamExpiredError):
        temporary.append(wallet_id, WALLET, [Deposited(9)], 4)


def test_a_commit_stamps_the_expiry_too(temporary: DynamoDBEventStore) -> None:
    """A unit of work's events of a temporary stream carry the same expiry as the stream's first."""
    wallet_id = saved(temporary, 1)
    first_expiry = items_of(temporary, wallet_id)[0]["expiresAt"]
    unit = UnitOfWork(temporary)
    unit.get(Wallet, wallet_id).deposit(3)
    unit.commit()
    assert [item["expiresAt"] for item in items_of(temporary, wallet_id)] == [first_expiry] * 3


def test_a_lifetime_must_be_a_positive_timedelta(store: DynamoDBEventStore) -> None:
    """expire_after with zero, a negative or a number of seconds: ConfigurationError naming the option."""
    for lifetime in (timedelta(0), timedelta(seconds=-5), 60):
        with pytest.raises(ConfigurationError, match="expire_after"):
            DynamoDBEventStore(store.settings, expire_after={WALLET: lifetime})  # type: ignore[dict-item]


@attrs.define
class Carts:
    """A read model that drops a wallet on its deletion, TTL's included."""

    wallet_id: str
    rows: dict[str, int] = attrs.field(factory=dict)
    deletions: list[StreamDeleted] = attrs.field(factory=list)

    def __call__(self, change: Change) -> None:
        if change.event.aggregate_id != self.wallet_id:
            return
        if isinstance(change.event.event, StreamDeleted):
            self.deletions.append(change.event.event)
            self.rows.pop(change.event.aggregate_id, None)
        else:
            self.rows[change.event.aggregate_id] = change.event.version


def test_lambda_handles_ttl_removals_as_one_deletion(temporary: DynamoDBEventStore) -> None:
    """TTL's REMOVE records of every item, in any order: one StreamDeleted (EXPIRED) at the top version; dropped."""
    wallet_id = saved(temporary, 2)
    model = Carts(wallet_id, {wallet_id: 3})
    handler = lambda_handler(Projection("ttl-view", model, InMemoryCheckpointStore(), temporary))

    def remove_by_ttl() -> None:
        for version in (2, 3, 1):
            temporary.connection.client.delete_item(
                TableName=temporary.settings.events_table_name,
                Key={"pk": {"S": f"{WALLET}:{wallet_id}"}, "sk": {"N": str(version)}},
            )

    records = [{**record, "userIdentity": TTL_IDENTITY} for record in capture_records(temporary, remove_by_ttl)]
    assert handler({"Records": [lambda_record(record) for record in records]}, None) == {"batchItemFailures": []}
    assert model.rows == {} and model.deletions == [StreamDeleted(3, EXPIRED)]


def test_a_removal_by_a_writer_is_no_deletion(temporary: DynamoDBEventStore) -> None:
    """The same REMOVE record without TTL's identity is skipped, as every REMOVE is by default."""
    wallet_id = saved(temporary, 1)
    model = Carts(wallet_id, {wallet_id: 2})
    handler = lambda_handler(Projection("ttl-writer", model, InMemoryCheckpointStore(), temporary))
    key = {"pk": {"S": f"{WALLET}:{wallet_id}"}, "sk": {"N": "2"}}
    table = temporary.settings.events_table_name
    records = capture_records(temporary, lambda: temporary.connection.client.delete_item(TableName=table, Key=key))
    handler({"Records": [lambda_record(record) for record in records]}, None)
    assert model.rows == {wallet_id: 2} and model.deletions == []


def test_the_async_store_stamps_and_checks_the_same_way(expiring: DynamoDBEventStore) -> None:
    """AsyncDynamoDBEventStore with expire_after: its items carry the expiry; an expired stream raises."""
    wallet_id = f"ttl-{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        async with AsyncDynamoDBEventStore(
            expiring.settings, serializer=expiring.serializer, expire_after={WALLET: timedelta(hours=1)}
        ) as aio:
            await aio.append(wallet_id, WALLET, [Deposited(1)], 0)
            await aio.append(wallet_id, WALLET, [Deposited(2)], 1)
            assert len({item["expiresAt"]["N"] for item in items_of(expiring, wallet_id)}) == 1
            expire_now(expiring, wallet_id)
            with pytest.raises(StreamExpiredError):
                await aio.load(wallet_id, WALLET)

    asyncio.run(run())


def test_dynamodb_locals_own_ttl_removals_reach_a_read_model_through_streams() -> None:
    """DynamoDB Local sweeps the expired items itself (eventName UNKNOWN_TO_SDK_VERSION): one deletion, no halt.

    On a server of its own: with the suite's many TTL tables, DynamoDB Local's sweeper takes minutes.
    """
    with DynamoDBLocal(quick_start=True) as local:
        settings = local.settings(events_table_name="swept", enable_streams=True)
        store = DynamoDBEventStore(settings, expire_after={WALLET: timedelta(days=1)})
        wallet_id = saved(store, 1)
        model = Carts(wallet_id, {})
        projection = Projection("swept", model, InMemoryCheckpointStore(), store)
        projection.run(stop_when_idle=True)
        expire_now(store, wallet_id)
        deadline = time.monotonic() + 60
        while items_of(store, wallet_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        projection.run(stop_when_idle=True)
        store.close()
    assert model.rows == {} and model.deletions == [StreamDeleted(2, EXPIRED)]
