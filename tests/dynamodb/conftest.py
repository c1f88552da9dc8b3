"""Helpers to watch and steer the calls a store makes at the botocore boundary; a small wallet domain."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import attrs
import pytest
from botocore.awsrequest import AWSResponse

from dynamo_es import (
    AggregateRoot,
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    Projection,
    Repository,
    applies,
    event,
)
from dynamo_es.aio import AsyncProjection
from dynamo_es.dynamodb.aio import AsyncDynamoDBCheckpointStore, AsyncDynamoDBEventStore
from dynamo_es.testing._aio_contract import Blocking, LoopThread


@attrs.define
class CallLog:
    """The parameters of every call of one operation that a store sent."""

    calls: list[dict[str, Any]] = attrs.field(factory=list)
    payload_sizes: list[int] = attrs.field(factory=list)

    def record(self, params: dict[str, Any], **_: Any) -> None:
        """A ``before-call`` handler: ``params["body"]`` is the request payload as sent."""
        body = params["body"]
        self.payload_sizes.append(len(body))
        self.calls.append(json.loads(body))


def error_response(code: str, *, reasons: list[str] | None = None) -> tuple[AWSResponse, dict[str, Any]]:
    """A botocore (http, parsed) pair for an error DynamoDB Local never produces by itself."""
    parsed: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {},
    }
    if reasons is not None:
        parsed["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return AWSResponse("http://injected", 400, {}, None), parsed


@pytest.fixture
def watch() -> Iterator[Callable[[DynamoDBEventStore, str], CallLog]]:
    """``watch(store, "TransactWriteItems")`` records that operation's calls until the test ends."""
    registered: list[tuple[Any, str, Callable[..., None]]] = []

    def start(store: DynamoDBEventStore, operation: str) -> CallLog:
        log = CallLog()
        name = f"before-call.dynamodb.{operation}"
        for client in (store.client, store.connection.client):
            client.meta.events.register(name, log.record)
            registered.append((client.meta.events, name, log.record))
        return log

    yield start
    for events, name, handler in registered:
        events.unregister(name, handler)


@pytest.fixture
def inject() -> Iterator[Callable[..., None]]:
    """``inject(store, operation, code, reasons=..., times=n)``: the next n calls fail with ``code``."""
    registered: list[tuple[Any, str, Callable[..., Any]]] = []

    def start(
        store: DynamoDBEventStore,
        operation: str,
        code: str,
        *,
        reasons: list[str] | None = None,
        times: int = 1,
    ) -> None:
        queue = [error_response(code, reasons=reasons) for _ in range(times)]

        def respond(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            return queue.pop(0) if queue else None

        name = f"before-call.dynamodb.{operation}"
        for client in (store.client, store.connection.client):
            client.meta.events.register_last(name, respond)  # after watch(), which must still see the call
            registered.append((client.meta.events, name, respond))

    yield start
    for events, name, handler in registered:
        events.unregister(name, handler)


@event(name="WalletOpened")
@attrs.frozen
class Opened:
    owner: str


@event(name="WalletDeposited")
@attrs.frozen
class Deposited:
    amount: int


@event(name="WalletWithdrawn")
@attrs.frozen
class Withdrawn:
    amount: int


class Wallet(AggregateRoot):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0

    @classmethod
    def open(cls, aggregate_id: str) -> Wallet:
        wallet = cls(aggregate_id)
        wallet.record(Opened("someone"))
        return wallet

    def deposit(self, amount: int) -> None:
        self.record(Deposited(amount))

    def withdraw(self, amount: int) -> None:
        self.record(Withdrawn(amount))

    @applies(Opened)
    def _opened(self, event: Opened) -> None:
        pass

    @applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount

    @applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount


def balance_delta(change: Change) -> int:
    """What a change does to a wallet's balance."""
    if isinstance(change.event.event, Deposited):
        return int(change.event.event.amount)
    if isinstance(change.event.event, Withdrawn):
        return -int(change.event.event.amount)
    return 0


def ours(changes: Iterable[Change], ids: Iterable[str]) -> list[Change]:
    """Only the changes of the given wallet ids (the table is shared by the stream tests)."""
    wanted = set(ids)
    return [c for c in changes if c.event.aggregate_id in wanted]


@pytest.fixture
def store(streams_table: EventStoreSettings) -> DynamoDBEventStore:
    return DynamoDBEventStore(attrs.evolve(streams_table, streams_poll_interval_ms=50))


@pytest.fixture
def wallets(store: DynamoDBEventStore) -> Repository[Wallet]:
    return Repository(Wallet, store)


@pytest.fixture
def make_wallets(wallets: Repository[Wallet]) -> Callable[..., list[str]]:
    """``make_wallets(n, deposits=k)``: n saved wallets with k deposits each, interleaved saves."""

    def make(count: int, *, deposits: int = 3) -> list[str]:
        ids = [f"w-{uuid.uuid4()}" for _ in range(count)]
        for wallet_id in ids:
            wallets.save(Wallet.open(wallet_id))
        for round_ in range(deposits):
            for wallet_id in ids:
                wallet = wallets.get(wallet_id)
                wallet.deposit(round_ + 1)
                wallets.save(wallet)
        return ids

    return make


def capture_records(store: DynamoDBEventStore, write: Callable[[], object]) -> list[dict[str, Any]]:
    """The raw stream records (GetRecords shape) of what ``write`` does, read from DynamoDB Local."""
    client = store.subscribe_to_changes().client
    arn = store.ensure_table()["LatestStreamArn"]
    marker = {store.settings.partition_key_attribute: {"S": f"Marker:{uuid.uuid4()}"}}
    marker[store.settings.sort_key_attribute] = {"N": "0"}
    # DynamoDB Local answers a LATEST iterator of a shard that never had a record with TrimmedDataAccessException.
    store.connection.client.put_item(TableName=store.settings.events_table_name, Item=marker)
    shards = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    open_shards = [s["ShardId"] for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    iterators = [
        client.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
        for shard in open_shards
    ]
    write()
    records: list[dict[str, Any]] = []
    for iterator in iterators:
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def epoch_seconds(value: Any) -> float:
    """A stream record's creation time in epoch seconds (a datetime from a parsing client, a number from ours)."""
    return float(value.timestamp() if isinstance(value, datetime) else value)


def lambda_record(record: dict[str, Any], source_arn: str = "arn:aws:dynamodb:eu-west-1:1:table/E/stream/x") -> Any:
    """One GetRecords record as a DynamoDB-stream Lambda event source mapping delivers it."""
    body = dict(record["dynamodb"])
    body["ApproximateCreationDateTime"] = epoch_seconds(body["ApproximateCreationDateTime"])
    envelope = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": body,
        "eventSourceARN": source_arn,
    }
    if "userIdentity" in record:
        envelope["userIdentity"] = record["userIdentity"]
    return json.loads(json.dumps(envelope))


def kinesis_record(record: dict[str, Any], sequence: int) -> dict[str, Any]:
    """One GetRecords record as Kinesis Data Streams for DynamoDB hands it to Lambda (base64 ``data``)."""
    body = dict(record["dynamodb"])
    body.pop("SequenceNumber")
    body.pop("StreamViewType", None)
    body["ApproximateCreationDateTime"] = int(epoch_seconds(body["ApproximateCreationDateTime"]) * 1000)
    data = {
        "awsRegion": "eu-west-1",
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "userIdentity": record.get("userIdentity"),
        "recordFormat": "application/json",
        "tableName": "Events",
        "dynamodb": body,
        "eventSource": "aws:dynamodb",
    }
    kinesis_sequence = f"4959{sequence:052d}"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "B1E2C3",
            "sequenceNumber": kinesis_sequence,
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "approximateArrivalTimestamp": 1714557600.123,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{kinesis_sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/projection",
        "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/events",
    }


MakeProjection = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make_projection(request: pytest.FixtureRequest) -> Iterator[MakeProjection]:
    """``make_projection(name, handler, checkpoints, store, **options)`` with the Projection signature.

    "async" builds an AsyncProjection on an AsyncDynamoDBEventStore of the same table (and an
    AsyncDynamoDBCheckpointStore for a DynamoDB checkpoint store), awaited on a loop thread
    behind a blocking facade: the same cases on the async transport.
    """
    if request.param == "sync":
        yield Projection
        return
    runner, opened = LoopThread(), []

    def make(name: str, handler: Any, checkpoints: Any, store: DynamoDBEventStore, **options: Any) -> Any:
        async_store = AsyncDynamoDBEventStore(store.settings)
        if isinstance(checkpoints, DynamoDBCheckpointStore):
            checkpoints = AsyncDynamoDBCheckpointStore(checkpoints.settings)
            opened.append(checkpoints)
        opened.append(async_store)
        return Blocking(AsyncProjection(name, handler, checkpoints, async_store, **options), runner)

    yield make
    for resource in opened:
        runner.run(resource.close())
    runner.stop()
