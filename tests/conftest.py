"""Shared fixtures: DynamoDB Local (from the dynamo_es pytest plugin) and stores on it; a small account domain."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

import attrs
import pytest

from dynamo_es import AggregateRoot, DynamoDBEventStore, EventStoreSettings, InMemoryEventStore, applies, event
from dynamo_es.cli import run
from dynamo_es.testing import DynamoDBLocal


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.ddblocal)])
def any_store(request: pytest.FixtureRequest) -> InMemoryEventStore | DynamoDBEventStore:
    """The in-memory store, and a DynamoDB store on the shared table (its tracking in the shared checkpoints)."""
    if request.param == "memory":
        return InMemoryEventStore()
    settings: EventStoreSettings = request.getfixturevalue("events_table")
    return DynamoDBEventStore(settings)


@pytest.fixture(scope="session")
def shared_tables(dynamodb_local: DynamoDBLocal) -> dict[str, EventStoreSettings]:
    """The session's shared, stream-enabled tables, all created before any write.

    DynamoDB Local slows down writes to a table whose stream was created after many stream
    records were written, so every stream-enabled table the suite shares is made up front.
    """
    tables = {
        "events": dynamodb_local.settings(events_table_name="Events", checkpoints_table_name="Checkpoints"),
        "streams": dynamodb_local.settings(events_table_name="StreamEvents", checkpoints_table_name="Checkpoints"),
        # another service's types and corrupt items: kept out of the tables that strict reads scan
        "foreign": dynamodb_local.settings(events_table_name="SharedEvents", checkpoints_table_name="Checkpoints"),
    }
    for settings in tables.values():
        DynamoDBEventStore(settings).ensure_table()
    return tables


@pytest.fixture(scope="session")
def events_table(shared_tables: dict[str, EventStoreSettings]) -> EventStoreSettings:
    """Settings of the shared events table (tests use their own stream ids)."""
    return shared_tables["events"]


@pytest.fixture(scope="session")
def streams_table(shared_tables: dict[str, EventStoreSettings]) -> EventStoreSettings:
    """Settings of the shared table the stream tests write to and read the stream of."""
    return shared_tables["streams"]


@pytest.fixture
def dynamodb_store(events_table: EventStoreSettings) -> DynamoDBEventStore:
    """A DynamoDB store on the shared table (tests use their own stream ids)."""
    return DynamoDBEventStore(events_table)


@pytest.fixture
def memory_store() -> InMemoryEventStore:
    """A fresh in-memory store."""
    return InMemoryEventStore()


@pytest.fixture
def new_table(dynamodb_local: DynamoDBLocal) -> Callable[..., EventStoreSettings]:
    """Settings for a table of its own with a unique name (streams off unless asked)."""

    def make(**options: object) -> EventStoreSettings:
        values: dict[str, object] = {
            "events_table_name": f"t-{uuid.uuid4().hex[:12]}",
            "enable_streams": False,
        }
        values.update(options)
        return dynamodb_local.settings(**values)

    return make


@pytest.fixture
def aggregate_id() -> str:
    """A fresh aggregate id."""
    return f"agg-{uuid.uuid4()}"


@event(name="tests.AccountOpened")
@attrs.frozen
class AccountOpened:
    owner: str


@event(name="tests.AccountCredited")
@attrs.frozen
class Credited:
    amount: int
    reason: str = ""


@event(name="tests.AccountDebited")
@attrs.frozen
class Debited:
    amount: int
    reason: str = ""


class Account(AggregateRoot, aggregate_type="TestAccount"):
    """A small account for unit-of-work and process-manager tests."""

    balance: int

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.balance = 0

    @classmethod
    def open(cls, aggregate_id: str, *, balance: int = 0) -> Account:
        account = cls(aggregate_id)
        account.record(AccountOpened(aggregate_id))
        if balance:
            account.record(Credited(balance, "opening"))
        return account

    def credit(self, amount: int, reason: str = "") -> None:
        self.record(Credited(amount, reason))

    def debit(self, amount: int, reason: str = "") -> None:
        if amount > self.balance:
            raise ValueError(f"balance {self.balance} is less than {amount}")
        self.record(Debited(amount, reason))

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.balance = 0

    @applies(Credited)
    def _credited(self, event: Credited) -> None:
        self.balance += event.amount

    @applies(Debited)
    def _debited(self, event: Debited) -> None:
        self.balance -= event.amount


@pytest.fixture
def cli_env(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> EventStoreSettings:
    """DYNAMO_ES_* variables for a table of the test's own (not created yet)."""
    return cli_environment(dynamodb_local, monkeypatch)


def cli_environment(local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> EventStoreSettings:
    """Set DYNAMO_ES_* variables for new tables on ``local``; returns their settings."""
    settings = local.settings(events_table_name=f"cli-{uuid.uuid4().hex[:10]}", enable_streams=True)
    for name, value in {
        "ENDPOINT_URL": settings.endpoint_url,
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key,
        "EVENTS_TABLE_NAME": settings.events_table_name,
        "CHECKPOINTS_TABLE_NAME": f"{settings.events_table_name}-cp",
        "SNAPSHOTS_TABLE_NAME": f"{settings.events_table_name}-snap",
        "KEYS_TABLE_NAME": f"{settings.events_table_name}-keys",
        "ARCHIVE_TABLE_NAME": f"{settings.events_table_name}-archive",
    }.items():
        monkeypatch.setenv(f"DYNAMO_ES_{name}", str(value))
    return attrs.evolve(
        settings,
        checkpoints_table_name=f"{settings.events_table_name}-cp",
        snapshots_table_name=f"{settings.events_table_name}-snap",
        keys_table_name=f"{settings.events_table_name}-keys",
        archive_table_name=f"{settings.events_table_name}-archive",
    )


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run(list(argv), out=out)
    return code, out.getvalue()
