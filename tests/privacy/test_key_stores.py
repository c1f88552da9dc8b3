"""Every key store passes the one key store contract: in memory and the keys table on DynamoDB Local."""

from __future__ import annotations

import attrs
import pytest

from dynamo_es import EventStoreSettings
from dynamo_es.dynamodb import DynamoDBKeyStore
from dynamo_es.exceptions import KeyManagementError
from dynamo_es.ports.keys import KeyStore
from dynamo_es.privacy import InMemoryKeyStore
from dynamo_es.testing import FaultProxy, KeyStoreContract


class TestInMemoryKeyStore(KeyStoreContract):
    def create_key_store(self) -> KeyStore:
        return InMemoryKeyStore()


@pytest.mark.ddblocal
class TestDynamoDBKeyStore(KeyStoreContract):
    @pytest.fixture(autouse=True)
    def _table(self, events_table: EventStoreSettings) -> None:
        self.keys = DynamoDBKeyStore(attrs.evolve(events_table, keys_table_name="ContractKeys"))

    def create_key_store(self) -> KeyStore:
        return self.keys


@pytest.mark.ddblocal
def test_the_keys_table_has_one_string_key(events_table: EventStoreSettings) -> None:
    """The keys table is created on first use with pk (S) as its only key."""
    keys = DynamoDBKeyStore(attrs.evolve(events_table, keys_table_name="KeysShape"))
    description = keys.ensure_table()
    assert description["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert description["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]


@pytest.mark.ddblocal
def test_a_failing_keys_table_is_a_key_management_error(events_table: EventStoreSettings) -> None:
    """An error DynamoDB answers (here access denied, injected) names the subject and keeps its cause."""
    with FaultProxy(str(events_table.endpoint_url)) as proxy:
        settings = attrs.evolve(events_table, keys_table_name="ContractKeys", endpoint_url=proxy.endpoint_url)
        keys = DynamoDBKeyStore(settings)
        keys.ensure_table()
        proxy.inject("GetItem", "error", code="AccessDeniedException")
        with pytest.raises(KeyManagementError, match=r"subject .someone.*AccessDeniedException") as raised:
            keys.wrapped_key("someone")
    assert raised.value.subject == "someone" and raised.value.__cause__ is not None


def test_the_dynamodb_key_store_is_a_key_store(events_table: EventStoreSettings) -> None:
    """It satisfies the runtime-checkable KeyStore protocol."""
    assert isinstance(DynamoDBKeyStore(events_table), KeyStore)
