"""dynamo-es status against DynamoDB Local: healthy, lagging and parked systems."""

from __future__ import annotations

import json
import uuid

import pytest

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    EventStoreSettings,
    OutboxDispatcher,
    Projection,
    Repository,
)
from dynamo_es.cli._status import EXIT_PARKED

from ..conftest import Account, cli

pytestmark = pytest.mark.ddblocal


def open_accounts(store: DynamoDBEventStore, count: int) -> list[str]:
    ids = [f"acc-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for account_id in ids:
        Repository(Account, store).save(Account.open(account_id, balance=10))
    return ids


def follow(store: DynamoDBEventStore, name: str) -> None:
    """A projection of ``store`` run on its stream until caught up."""
    Projection(name, lambda change: None, DynamoDBCheckpointStore(store.settings), store).run(stop_when_idle=True)


def status_json() -> tuple[int, dict[str, object]]:
    code, out = cli("status", "--json")
    return code, json.loads(out)


class TestStatus:
    def test_healthy(self, cli_env: EventStoreSettings) -> None:
        """A caught-up projection: lag 0, nothing parked, an empty outbox; exit 0; a table by default."""
        store = DynamoDBEventStore(cli_env)
        open_accounts(store, 2)
        OutboxDispatcher(store, lambda stored: None).dispatch_once()  # its MODIFY records are in the stream too
        follow(store, "balances")
        code, document = status_json()
        assert code == 0
        (projection,) = document["projections"]  # type: ignore[misc]
        assert projection["name"] == "balances"
        ((shard, sequence),) = projection["position"].items()  # type: ignore[union-attr]
        assert shard.startswith("shardId-") and sequence.isdigit()
        assert (projection["shards"], projection["streams"], projection["lagSeconds"]) == (1, 2, 0.0)
        assert (projection["parked"], projection["failing"]) == (0, 0)
        assert document["outbox"] == {
            "backlog": 0,
            "oldestStreamId": None,
            "oldestVersion": None,
            "oldestTimestamp": None,
        }
        assert document["parked"] == 0
        code, table = cli("status")
        header, row, outbox = table.splitlines()
        assert header.split() == ["PROJECTION", "SHARDS", "LAG", "STREAMS", "PARKED", "FAILING", "UPDATED"]
        assert row.split()[:6] == ["balances", "1", "0s", "2", "0", "0"]
        assert outbox == "outbox: 0 undispatched"

    def test_lagging(self, cli_env: EventStoreSettings) -> None:
        """Events after the projection's position: its lag is the age of the oldest; the outbox names its oldest."""
        store = DynamoDBEventStore(cli_env)
        open_accounts(store, 1)
        OutboxDispatcher(store, lambda stored: None).dispatch_once()  # its MODIFY records are in the stream too
        follow(store, "balances")
        (late,) = open_accounts(store, 1)
        code, document = status_json()
        assert code == 0
        (projection,) = document["projections"]  # type: ignore[misc]
        assert projection["lagSeconds"] > 0  # DynamoDB Local dates records to the minute: never 0 once behind
        outbox = document["outbox"]
        assert (outbox["backlog"], outbox["oldestStreamId"], outbox["oldestVersion"]) == (2, f"TestAccount:{late}", 1)  # type: ignore[index]
        assert cli("status")[1].splitlines()[-1].startswith(f"outbox: 2 undispatched, oldest TestAccount:{late} v1")

    def test_parked(self, cli_env: EventStoreSettings) -> None:
        """A parked stream exits 5 and is counted; a Lambda-style projection (no position) has no lag."""
        store = DynamoDBEventStore(cli_env)
        bad, good = open_accounts(store, 2)

        def handler(change: Change) -> None:
            if change.event.aggregate_id == bad:
                raise ValueError("cannot apply")

        checkpoints = DynamoDBCheckpointStore(store.settings)
        changes = [Change.stored(e) for account in (bad, good) for e in store.load(account, "TestAccount")]
        Projection("lambda-fed", handler, checkpoints, store, max_attempts=1).handle(changes)
        code, document = status_json()
        assert code == EXIT_PARKED
        (projection,) = document["projections"]  # type: ignore[misc]
        assert (projection["name"], projection["shards"], projection["lagSeconds"]) == ("lambda-fed", 0, None)
        assert (projection["streams"], projection["parked"], projection["failing"]) == (1, 1, 0)  # 1 applied
        assert document["parked"] == 1
        code, table = cli("status")
        assert code == EXIT_PARKED
        assert table.splitlines()[1].split()[:6] == ["lambda-fed", "0", "-", "1", "1", "0"]

    def test_failing_before_parking(self, cli_env: EventStoreSettings) -> None:
        """A stream whose failures are counted but not parked yet is failing, and the exit code stays 0."""
        store = DynamoDBEventStore(cli_env)
        (account,) = open_accounts(store, 1)

        def handler(change: Change) -> None:
            raise ValueError("cannot apply")

        changes = [Change.stored(e) for e in store.load(account, "TestAccount")]
        Projection("retrying", handler, DynamoDBCheckpointStore(store.settings), store, max_attempts=3).handle(changes)
        code, document = status_json()
        (projection,) = document["projections"]  # type: ignore[misc]
        assert (code, projection["parked"], projection["failing"]) == (0, 0, 1)

    def test_no_projection_yet(self, cli_env: EventStoreSettings) -> None:
        """With an empty checkpoints table, status says there is no projection and exits 0."""
        DynamoDBEventStore(cli_env).ensure_table()
        DynamoDBCheckpointStore(cli_env).ensure_table()
        code, out = cli("status")
        assert (code, out) == (0, "no projections in the checkpoints table\noutbox: 0 undispatched\n")

    def test_missing_checkpoints_table(self, cli_env: EventStoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """A checkpoints table that does not exist (a misnamed one) is no healthy system: exit 4, naming it."""
        DynamoDBEventStore(cli_env).ensure_table()
        assert cli("status")[0] == 4
        assert cli_env.checkpoints_table_name in capsys.readouterr().err

    def test_missing_events_table(self, cli_env: EventStoreSettings) -> None:
        """Without the events table, status exits 4 like every other command."""
        assert cli("status")[0] == 4
