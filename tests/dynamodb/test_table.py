"""Table provisioning on DynamoDB Local: key schema, billing, stream, races, mismatches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from pynamodb.connection import Connection

from dynamo_es import DynamoDBEventStore, EventStoreSettings
from dynamo_es.exceptions import TableSchemaError
from dynamo_es.testing import DynamoDBLocal

pytestmark = pytest.mark.ddblocal

NewTable = Callable[..., EventStoreSettings]


def describe(settings: EventStoreSettings) -> dict[str, Any]:
    connection = Connection(
        region=settings.region,
        host=settings.endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
    )
    description: dict[str, Any] = connection.client.describe_table(TableName=settings.events_table_name)["Table"]
    return description


class TestCreation:
    def test_on_demand_table_with_stream_has_the_asked_schema(self, new_table: NewTable) -> None:
        """Default settings create pk (S, HASH) + sk (N, RANGE), PAY_PER_REQUEST, NEW_AND_OLD_IMAGES."""
        settings = new_table(enable_streams=True)
        DynamoDBEventStore(settings).ensure_table()
        table = describe(settings)
        assert table["TableStatus"] == "ACTIVE"
        assert table["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]} == {
            "pk": "S",
            "sk": "N",
            "outboxPending": "S",
            "timestamp": "S",
        }
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        (outbox,) = table["GlobalSecondaryIndexes"]
        assert outbox["IndexName"] == "outbox"
        assert outbox["KeySchema"] == [
            {"AttributeName": "outboxPending", "KeyType": "HASH"},
            {"AttributeName": "timestamp", "KeyType": "RANGE"},
        ]
        assert outbox["Projection"] == {"ProjectionType": "ALL"}
        assert table["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }

    def test_provisioned_table_without_stream(self, new_table: NewTable) -> None:
        """use_on_demand_capacity=False creates a provisioned table with the given units; no stream."""
        settings = new_table(use_on_demand_capacity=False, read_capacity_units=7, write_capacity_units=3)
        DynamoDBEventStore(settings).ensure_table()
        table = describe(settings)
        throughput = table["ProvisionedThroughput"]
        assert (throughput["ReadCapacityUnits"], throughput["WriteCapacityUnits"]) == (7, 3)
        index_throughput = table["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]
        assert (index_throughput["ReadCapacityUnits"], index_throughput["WriteCapacityUnits"]) == (7, 3)
        assert table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"
        assert "StreamSpecification" not in table or not table["StreamSpecification"]["StreamEnabled"]

    def test_custom_key_attribute_names_are_used_end_to_end(self, new_table: NewTable) -> None:
        """partition/sort key names from settings shape the table, the items and the queries."""
        from dynamo_es import EventSerializer
        from dynamo_es.testing._contract_events import Noted, contract_registry

        settings = new_table(partition_key_attribute="streamId", sort_key_attribute="seq")
        store = DynamoDBEventStore(settings, serializer=EventSerializer(registry=contract_registry))
        store.append("1", "Acc", [Noted("a"), Noted("b")], 0).raise_for_failure()
        assert [e.event.text for e in store.load("1", "Acc")] == ["a", "b"]
        key_names = [k["AttributeName"] for k in describe(settings)["KeySchema"]]
        assert key_names == ["streamId", "seq"]
        raw = store.connection.client.get_item(
            TableName=settings.events_table_name,
            Key={"streamId": {"S": "Acc:1"}, "seq": {"N": "2"}},
        )["Item"]
        assert set(raw) == {
            "streamId", "seq", "eventId", "aggregateId", "aggregateType", "eventType",
            "version", "timestamp", "eventData", "metadata", "isDispatched", "outboxPending",
        }  # fmt: skip
        assert raw["isDispatched"] == {"BOOL": False} and raw["version"] == {"N": "2"}
        assert raw["outboxPending"] == {"S": "0"}  # the sparse outbox index key, gone once dispatched

    def test_racing_creators_both_succeed(self, new_table: NewTable) -> None:
        """Two stores creating the same missing table at once both end with it ACTIVE."""
        settings = new_table()
        errors: list[BaseException] = []
        gate = threading.Barrier(2)

        def create() -> None:
            gate.wait()
            try:
                DynamoDBEventStore(settings).ensure_table()
            except BaseException as error:  # noqa: BLE001 (collected and asserted below)
                errors.append(error)

        threads = [threading.Thread(target=create) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert describe(settings)["TableStatus"] == "ACTIVE"

    def test_existing_table_is_reused(self, new_table: NewTable) -> None:
        """ensure_table on an existing compatible table changes nothing and succeeds."""
        settings = new_table()
        first = DynamoDBEventStore(settings).ensure_table()
        second = DynamoDBEventStore(settings).ensure_table()
        assert first["TableArn"] == second["TableArn"]


class TestIncompatibleTable:
    def test_other_key_schema_is_a_clear_error(self, new_table: NewTable, dynamodb_local: DynamoDBLocal) -> None:
        """A table whose keys differ from the settings raises TableSchemaError naming both."""
        settings = new_table()
        Connection(
            region=settings.region,
            host=settings.endpoint_url,
            aws_access_key_id=settings.aws_access_key_id,
            aws_secret_access_key=settings.aws_secret_access_key,
        ).client.create_table(
            TableName=settings.events_table_name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with pytest.raises(TableSchemaError) as caught:
            DynamoDBEventStore(settings).load("1", "Acc")
        assert caught.value.table_name == settings.events_table_name
        assert "HASH id (S)" in caught.value.actual and "RANGE sk (N)" in caught.value.expected
