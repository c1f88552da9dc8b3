"""The SAM template in examples/aws_lambda: what it must declare, checked against what dynamo-es does."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import botocore.client
import pytest
import yaml

from dynamo_es import DynamoDBCheckpointStore, DynamoDBEventStore, EventStoreSettings
from dynamo_es.testing import DynamoDBLocal

from .conftest import capture_records, lambda_record

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aws_lambda"
TEMPLATE: dict[str, Any] = yaml.safe_load((EXAMPLE / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
STATEMENTS: list[dict[str, Any]] = RESOURCES["BalancesProjectionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
    "Statement"
]


def load_handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"lambda_example_{uuid.uuid4().hex}", EXAMPLE / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def allowed(resource: str) -> set[str]:
    """The DynamoDB actions the role allows on a resource named by its logical id (and its stream)."""
    actions: set[str] = set()
    for statement in STATEMENTS:
        if resource in str(statement["Resource"]):
            actions |= {a.removeprefix("dynamodb:") for a in statement["Action"]}
    return actions


class TestTemplateShape:
    def test_is_a_sam_template_with_the_function_and_its_tables(self) -> None:
        """It parses as YAML, uses the SAM transform and declares the function, tables and queue."""
        assert TEMPLATE["Transform"] == "AWS::Serverless-2016-10-31"
        assert RESOURCES["BalancesProjection"]["Type"] == "AWS::Serverless::Function"
        assert {RESOURCES[n]["Type"] for n in ("EventsTable", "CheckpointsTable", "BalancesTable")} == {
            "AWS::DynamoDB::Table"
        }
        assert RESOURCES["BalancesProjection"]["Properties"]["Handler"] == "handler.handler"
        assert hasattr(load_handler_module(), "handler")

    def test_event_source_mapping_is_configured_for_partial_batches(self) -> None:
        """TRIM_HORIZON, ReportBatchItemFailures, bisection, bounded retries and age, an on-failure destination."""
        events = RESOURCES["BalancesProjection"]["Properties"]["Events"]["EventsStream"]
        props = events["Properties"]
        assert events["Type"] == "DynamoDB"
        assert props["Stream"] == {"Fn::GetAtt": ["EventsTable", "StreamArn"]}
        assert props["StartingPosition"] == "TRIM_HORIZON"
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BisectBatchOnFunctionError"] is True
        assert 0 < props["MaximumRetryAttempts"] <= 10_000 and 60 <= props["MaximumRecordAgeInSeconds"] <= 604_800
        assert props["ParallelizationFactor"] == 1  # one batch at a time per shard keeps per-aggregate order
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["FailedBatchesQueue", "Arn"]}

    def test_the_role_is_least_privilege(self) -> None:
        """No wildcard action, no bare "*" resource, and no managed policy that would widen it."""
        role = RESOURCES["BalancesProjectionRole"]["Properties"]
        assert "ManagedPolicyArns" not in role
        assert "Policies" not in RESOURCES["BalancesProjection"]["Properties"]
        for statement in STATEMENTS:
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in statement["Action"])
            assert statement["Resource"] != "*"


@pytest.mark.ddblocal
class TestTemplateAgainstDynamoDBLocal:
    def test_tables_are_what_dynamo_es_creates(self, dynamodb_local: DynamoDBLocal) -> None:
        """Keys, attribute types, the outbox index, the stream view and billing equal a table created by the store."""
        settings = dynamodb_local.settings(
            events_table_name=f"tpl-{uuid.uuid4().hex[:8]}", checkpoints_table_name=f"tplc-{uuid.uuid4().hex[:8]}"
        )
        created = DynamoDBEventStore(settings).ensure_table()
        declared = RESOURCES["EventsTable"]["Properties"]
        assert declared["KeySchema"] == created["KeySchema"]
        assert _sorted(declared["AttributeDefinitions"]) == _sorted(created["AttributeDefinitions"])
        (index,) = created["GlobalSecondaryIndexes"]
        (declared_index,) = declared["GlobalSecondaryIndexes"]
        assert (declared_index["IndexName"], declared_index["KeySchema"]) == (index["IndexName"], index["KeySchema"])
        assert declared_index["Projection"] == index["Projection"]
        assert declared["StreamSpecification"]["StreamViewType"] == created["StreamSpecification"]["StreamViewType"]
        assert declared["BillingMode"] == created["BillingModeSummary"]["BillingMode"]
        checkpoints = DynamoDBCheckpointStore(settings).ensure_table()
        assert RESOURCES["CheckpointsTable"]["Properties"]["KeySchema"] == checkpoints["KeySchema"]

    def test_the_role_allows_every_call_the_function_makes(
        self, dynamodb_local: DynamoDBLocal, recorded_calls: list[tuple[str, str]]
    ) -> None:
        """Invoked with reordered records (gap filling) and a redelivery, each call is allowed on its table."""
        module = load_handler_module()
        suffix = uuid.uuid4().hex[:8]
        settings = dynamodb_local.settings(
            events_table_name=f"tple-{suffix}", checkpoints_table_name=f"tplk-{suffix}", enable_streams=True
        )
        store = DynamoDBEventStore(settings)
        store.ensure_table()
        DynamoDBCheckpointStore(settings).ensure_table()
        balances = f"tplb-{suffix}"
        store.connection.client.create_table(
            TableName=balances,
            KeySchema=[{"AttributeName": "account", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "account", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        records = capture_records(store, lambda: _open_account(module, store))
        event = {"Records": [lambda_record(r) for r in reversed(records)]}
        recorded_calls.clear()
        invoke = module.lambda_handler(module.build_projection(_lambda_settings(settings), balances))
        assert invoke(event, None) == {"batchItemFailures": []}
        assert invoke(event, None) == {"batchItemFailures": []}
        module.build_projection(settings, balances).parked()
        tables = {settings.events_table_name: "EventsTable", settings.checkpoints_table_name: "CheckpointsTable"}
        tables[balances] = "BalancesTable"
        for operation, table in recorded_calls:
            assert operation in allowed(tables[table]), (operation, table)
        assert {op for op, _ in recorded_calls} >= {"Query", "BatchGetItem", "UpdateItem"}


def _lambda_settings(settings: EventStoreSettings) -> EventStoreSettings:
    """As the template configures the function: tables are never created by it."""
    return EventStoreSettings.from_mapping({**_as_mapping(settings), "create_table_if_not_exists": False})


def _as_mapping(settings: EventStoreSettings) -> dict[str, Any]:
    return attrs.asdict(settings)


def _open_account(module: Any, store: DynamoDBEventStore) -> None:
    account = module.BankAccount.open(f"tpl-{uuid.uuid4().hex[:6]}", owner="Ada")
    account.deposit(module.Decimal("10"))
    account.withdraw(module.Decimal("3"))
    module.Repository(module.BankAccount, store).save(account)


def _sorted(definitions: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(definitions, key=lambda d: d["AttributeName"])


@pytest.fixture
def recorded_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every DynamoDB call made (operation, table), recorded at botocore's client boundary."""
    calls: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def spy(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        tables = [api_params["TableName"]] if "TableName" in api_params else list(api_params.get("RequestItems", {}))
        calls.extend((operation_name, table) for table in tables)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    return calls
