"""dynamo-es template, migrate and --help, against DynamoDB Local."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import botocore.client
import hcl2
import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    DynamoDBSnapshotStore,
    EventSerializer,
    EventStoreSettings,
    OutboxDispatcher,
    Projection,
    Repository,
    UnitOfWork,
    process_manager,
)
from dynamo_es.cli import _parser
from dynamo_es.dynamodb import DynamoDBKeyStore, PutItem, table_meta
from dynamo_es.privacy import CryptoShredder, LocalKeyWrapper
from dynamo_es.testing import DynamoDBLocal

from ..conftest import Account, cli, cli_environment
from ..privacy.test_shredder import Registered

pytestmark = pytest.mark.ddblocal

LOGICAL = {
    "EventsTable": "events",
    "CheckpointsTable": "checkpoints",
    "SnapshotsTable": "snapshots",
    "KeysTable": "keys",
    "ArchiveTable": "archive",
}


def described(settings: EventStoreSettings) -> dict[str, dict[str, Any]]:
    """What create-table made: each table's DescribeTable, by template name."""
    client = DynamoDBEventStore(settings).connection.client
    names = {
        "events": settings.events_table_name,
        "checkpoints": settings.checkpoints_table_name,
        "snapshots": settings.snapshots_table_name,
        "keys": settings.keys_table_name,
    }
    return {key: client.describe_table(TableName=name)["Table"] for key, name in names.items()}


def by_name(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(definitions, key=lambda d: d["AttributeName"])


class TestCloudFormation:
    @pytest.mark.parametrize("on_demand", [True, False])
    def test_describes_exactly_what_create_table_creates(
        self, cli_env: EventStoreSettings, on_demand: bool, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Keys, attribute types, the outbox index, the stream, billing and capacity equal the created tables."""
        monkeypatch.setenv("DYNAMO_ES_USE_ON_DEMAND_CAPACITY", str(on_demand).lower())
        assert cli("create-table", "--all")[0] == 0
        code, output = cli("template", "cloudformation")
        assert code == 0
        resources = json.loads(output)["Resources"]
        assert set(resources) == set(LOGICAL)
        for logical, table in described(cli_env).items():
            declared = resources[next(k for k, v in LOGICAL.items() if v == logical)]["Properties"]
            assert declared["TableName"] == table["TableName"]
            assert declared["KeySchema"] == table["KeySchema"]
            assert by_name(declared["AttributeDefinitions"]) == by_name(table["AttributeDefinitions"])
            billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
            assert declared["BillingMode"] == billing
            if not on_demand:
                created = table["ProvisionedThroughput"]
                assert declared["ProvisionedThroughput"] == {
                    k: created[k] for k in ("ReadCapacityUnits", "WriteCapacityUnits")
                }
            indexes = [
                (i["IndexName"], i["KeySchema"], i["Projection"]) for i in table.get("GlobalSecondaryIndexes", [])
            ]
            assert [
                (i["IndexName"], i["KeySchema"], i["Projection"]) for i in declared.get("GlobalSecondaryIndexes", [])
            ] == indexes
            stream = table.get("StreamSpecification", {})
            assert declared.get("StreamSpecification", {}).get("StreamViewType") == stream.get("StreamViewType")

    def test_iam_adds_two_least_privilege_policies(self, cli_env: EventStoreSettings) -> None:
        """--iam adds an application and a projection policy: no wildcard action, no "*" resource."""
        resources = json.loads(cli("template", "cloudformation", "--iam")[1])["Resources"]
        for name in ("ApplicationPolicy", "ProjectionLambdaPolicy"):
            assert resources[name]["Type"] == "AWS::IAM::ManagedPolicy"
            for statement in resources[name]["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow" and all("*" not in action for action in statement["Action"])
                assert "*" not in statement["Resource"]

    def test_the_application_policy_allows_every_call_the_stores_make(
        self, cli_env: EventStoreSettings, recorded_calls: list[tuple[str, str, str]]
    ) -> None:
        """Appends, commits, loads, snapshots, the outbox, projections, a rebuild, deleting, archiving: all allowed."""
        policy = json.loads(cli("template", "cloudformation", "--iam")[1])["Resources"]["ApplicationPolicy"]
        allowed = allowed_actions(policy)
        assert cli("create-table", "--all")[0] == 0  # by the template, in production
        recorded_calls.clear()
        settings = attrs.evolve(cli_env, streams_poll_interval_ms=50, create_table_if_not_exists=False)
        exercise_the_stores(settings)
        tables = {
            v: k
            for k, v in {
                "events": settings.events_table_name,
                "checkpoints": settings.checkpoints_table_name,
                "snapshots": settings.snapshots_table_name,
                "keys": settings.keys_table_name,
                "archive": settings.archive_table_name,
            }.items()
        }
        needed = {(action, tables[table], suffix) for action, table, suffix in recorded_calls if table in tables}
        assert {action for action, _, _ in needed} >= {
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:GetRecords",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
        }
        assert needed <= allowed, needed - allowed

    def test_the_projection_policy_allows_every_call_a_projection_makes(
        self, cli_env: EventStoreSettings, recorded_calls: list[tuple[str, str, str]]
    ) -> None:
        """A projection handling a gapped batch (Lambda), then following the stream: all allowed."""
        policy = json.loads(cli("template", "cloudformation", "--iam")[1])["Resources"]["ProjectionLambdaPolicy"]
        assert cli("create-table", "--all")[0] == 0
        settings = attrs.evolve(cli_env, streams_poll_interval_ms=50, create_table_if_not_exists=False)
        store = DynamoDBEventStore(settings)
        account = Account.open(f"iam-{uuid.uuid4().hex[:6]}", balance=10)
        Repository(Account, store).save(account)
        last = store.load(account.id, "TestAccount")[-1]
        read_model = read_model_table(settings)
        recorded_calls.clear()
        view = Projection("iam-lambda", lambda change: None, DynamoDBCheckpointStore(settings), store)
        view.handle([Change.stored(last)])  # version 1 is missing: loaded from the table
        view.run(stop_when_idle=True)
        changes = [Change.stored(e) for e in store.load(account.id, "TestAccount")]
        process_manager("iam-pm", open_a_mirror, store).handle(changes)
        checkpoints = DynamoDBCheckpointStore(settings)
        Projection("iam-eo", lambda c: PutItem(read_model(c.event.stream_id)), checkpoints, store,
                   effects=checkpoints).handle(changes)  # fmt: skip
        view.rebuild(follow=False)
        tables = {
            settings.events_table_name: "events",
            settings.checkpoints_table_name: "checkpoints",
            read_model.Meta.table_name: "read_models",
        }
        needed = {(action, tables[table], suffix) for action, table, suffix in recorded_calls if table in tables}
        assert {action for action, _, _ in needed} >= {
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:GetRecords",
            "dynamodb:PutItem",
            "dynamodb:Scan",
        }
        assert {table for _, table, _ in needed} == {"events", "checkpoints", "read_models"}
        assert needed <= allowed_actions(policy), needed - allowed_actions(policy)


class TestTerraform:
    def test_parses_as_hcl_and_describes_the_created_tables(self, cli_env: EventStoreSettings) -> None:
        """Each aws_dynamodb_table has the created table's name, keys, attributes, index, stream and billing."""
        assert cli("create-table", "--all")[0] == 0
        parsed = hcl2.loads(cli("template", "terraform", "--iam")[1])
        tables = {
            name: body
            for block in parsed["resource"]
            for kind, named in block.items()
            if unquote(kind) == "aws_dynamodb_table"
            for name, body in ((unquote(n), b) for n, b in named.items())
        }
        policies = [
            unquote(n)
            for block in parsed["resource"]
            for kind, named in block.items()
            if unquote(kind) == "aws_iam_policy"
            for n in named
        ]
        assert policies == ["dynamo_es_application", "dynamo_es_projection"]
        for name, table in described(cli_env).items():
            declared = tables[name]
            keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
            range_key = unquote(declared["range_key"]) if "range_key" in declared else None
            assert (unquote(declared["name"]), unquote(declared["hash_key"]), range_key) == (
                table["TableName"],
                keys["HASH"],
                keys.get("RANGE"),
            )
            attributes = sorted((unquote(a["name"]), unquote(a["type"])) for a in declared["attribute"])
            assert attributes == sorted((d["AttributeName"], d["AttributeType"]) for d in table["AttributeDefinitions"])
            assert unquote(declared["billing_mode"]) == table["BillingModeSummary"]["BillingMode"]
            view = table.get("StreamSpecification", {}).get("StreamViewType")
            assert (unquote(declared["stream_view_type"]) if declared.get("stream_enabled") else None) == view
            indexes = [
                (i["IndexName"], {k["KeyType"]: k["AttributeName"] for k in i["KeySchema"]})
                for i in table.get("GlobalSecondaryIndexes", [])
            ]
            assert [
                (unquote(i["name"]), {"HASH": unquote(i["hash_key"]), "RANGE": unquote(i["range_key"])})
                for i in declared.get("global_secondary_index", [])
            ] == indexes


@pytest.fixture
def own_server_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventStoreSettings]:
    """DYNAMO_ES_* variables for a DynamoDB Local of this test's own.

    DynamoDB Local (3.x) never finishes adding an index to a table (it stays CREATING) once a few
    dozen tables on the server have TTL on, as every events table of this suite has: its TTL
    sweeper holds the background jobs. AWS has no such limit, so migrate is tested on a server
    with no other table.
    """
    with DynamoDBLocal(quick_start=True) as local:
        yield cli_environment(local, monkeypatch)


class TestMigrate:
    def test_an_old_table_gets_the_index_the_stream_and_its_undispatched_events_in_the_outbox(
        self, own_server_env: EventStoreSettings
    ) -> None:
        """A 0.1-style table (keys only): migrate says what it did; a second run says up to date; the outbox works."""
        client = DynamoDBEventStore(own_server_env).connection.client
        client.create_table(
            TableName=own_server_env.events_table_name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        store = DynamoDBEventStore(attrs.evolve(own_server_env, create_table_if_not_exists=False))
        Repository(Account, store).save(Account.open("old-1", balance=5))
        client.update_item(
            TableName=own_server_env.events_table_name,
            Key={"pk": {"S": "TestAccount:old-1"}, "sk": {"N": "1"}},
            UpdateExpression="REMOVE outboxPending",
        )
        code, output = cli("migrate")
        assert code == 0
        assert output.splitlines() == [
            f"{own_server_env.events_table_name}: added the 'outbox' index",
            f"{own_server_env.events_table_name}: turned the stream on (NEW_AND_OLD_IMAGES)",
            f"{own_server_env.events_table_name}: turned TTL on ('expiresAt', for expiring temporary streams)",
            f"{own_server_env.events_table_name}: put 1 undispatched event(s) written before the index into the outbox",
        ]
        assert cli("migrate") == (0, f"{own_server_env.events_table_name}: up to date\n")
        assert DynamoDBEventStore(own_server_env).count_undispatched() == 2
        ttl = client.describe_time_to_live(TableName=own_server_env.events_table_name)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")

    def test_a_missing_table_exits_4(self, cli_env: EventStoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """Migrate on a table that does not exist exits 4 and says to create it."""
        assert cli("migrate")[0] == 4 and "create-table" in capsys.readouterr().err


class TestHelp:
    def test_help_texts_have_no_markup(self) -> None:
        """No reST roles or double backticks in any command's --help (sub-sub-commands included)."""
        texts = [help_text for parser in parsers(_parser()) for help_text in [parser.format_help()]]
        assert len(texts) > 10
        for text in texts:
            assert "``" not in text and not re.search(r":(class|meth|func|attr|mod):", text), text


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every sub-command parser under it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def unquote(value: str) -> str:
    """python-hcl2 keeps string literals' quotes."""
    return value[1:-1] if value.startswith('"') and value.endswith('"') else value


def allowed_actions(policy: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(action, table, suffix) triples a CloudFormation policy allows."""
    allowed = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if statement["Resource"] == {"Ref": "ReadModelTableArns"}:
            allowed |= {(action, "read_models", "") for action in statement["Action"]}
            continue
        for resource in statement["Resource"]:
            if "Fn::GetAtt" in resource:
                logical, attribute = resource["Fn::GetAtt"]
                suffix = "stream" if attribute == "StreamArn" else ""
            else:
                logical, suffix = re.fullmatch(r"\$\{(\w+)\.Arn\}(.*)", resource["Fn::Sub"]).groups()  # type: ignore[union-attr]
            allowed |= {(action, LOGICAL[logical], suffix) for action in statement["Action"]}
    return allowed


def open_a_mirror(change: Change, unit: UnitOfWork) -> None:
    """A process manager's policy: a new aggregate per upstream event (PutItem, ConditionCheckItem on events)."""
    unit.add(Account.open(f"mirror-{change.event.aggregate_id}-{change.event.version}"))


def read_model_table(settings: EventStoreSettings) -> Any:
    """A read-model table of its own on the settings' endpoint, created now (as infrastructure code would)."""

    class Row(Model):
        Meta = table_meta(settings, f"rm-{uuid.uuid4().hex[:8]}")
        key = UnicodeAttribute(hash_key=True)

    Row.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    return Row


def exercise_the_stores(settings: EventStoreSettings) -> None:
    """Everything an application does with dynamo-es, once."""
    store = DynamoDBEventStore(settings)
    accounts = Repository(Account, store, snapshots=DynamoDBSnapshotStore(settings))
    account = Account.open(f"iam-{uuid.uuid4().hex[:6]}", balance=10)
    accounts.save(account)
    accounts.take_snapshot(account)
    unit = UnitOfWork(store)
    unit.get(Account, account.id).credit(1)
    unit.add(Account.open(f"iam-{uuid.uuid4().hex[:6]}"))
    unit.commit()
    accounts.get(account.id)
    store.append(account.id, "TestAccount", [], 3)
    OutboxDispatcher(store, lambda event: None).dispatch_once()
    checkpoints = DynamoDBCheckpointStore(settings)
    Projection("iam-view", lambda change: None, checkpoints, store).run(stop_when_idle=True)
    Projection("iam-rebuild", lambda change: None, checkpoints, store).rebuild(follow=False)
    process_manager("iam-pm", lambda change, unit: None, store).handle([])
    shredder = CryptoShredder(DynamoDBKeyStore(settings), LocalKeyWrapper(bytes(32)))
    sealed = DynamoDBEventStore(settings, serializer=EventSerializer(shredder=shredder))
    sealed.append(f"iam-{uuid.uuid4().hex[:6]}", "IamCustomer", [Registered(uuid.uuid4().hex, "a@b.c", 1)], 0)
    shredder.forget(uuid.uuid4().hex)
    doomed = Account.open(f"iam-{uuid.uuid4().hex[:6]}")
    doomed.credit(1)  # two events: the seal, then a transaction of Deletes
    accounts.save(doomed)
    accounts.take_snapshot(doomed)
    accounts.delete(doomed.id)  # its snapshots, then its stream
    kept = Account.open(f"iam-{uuid.uuid4().hex[:6]}")
    kept.credit(1)
    accounts.save(kept)
    accounts.archive(kept.id)  # the seal, then moves between the tables
    accounts.get(kept.id, archived=True)
    accounts.restore(kept.id)


ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@pytest.fixture
def recorded_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every DynamoDB call as (IAM action, table, suffix), recorded at botocore's client boundary."""
    calls: list[tuple[str, str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.extend(iam_actions(operation, params))
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls


def iam_actions(operation: str, params: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    if operation == "TransactWriteItems":
        for item in params["TransactItems"]:
            ((kind, body),) = item.items()
            yield f"dynamodb:{ITEM_ACTIONS[kind]}", body["TableName"], ""
    elif operation in ("DescribeStream", "GetRecords", "GetShardIterator"):
        arn = params.get("StreamArn") or params.get("ShardIterator", "")
        table = re.search(r"table/([^/]+)/stream", arn)
        yield f"dynamodb:{operation}", table.group(1) if table else "?", "stream"
    elif "RequestItems" in params:
        for table in params["RequestItems"]:
            yield f"dynamodb:{operation}", table, ""
    elif "TableName" in params:
        suffix = f"/index/{params['IndexName']}" if "IndexName" in params else ""
        yield f"dynamodb:{operation}", params["TableName"], suffix
