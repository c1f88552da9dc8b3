"""Test support: a DynamoDB Local launcher, pytest fixtures, the store contract suite and Lambda payloads.

The pytest plugin (``dynamo_es.testing.pytest_plugin``) is registered automatically when
dynamo-es is installed; it provides the session-scoped ``dynamodb_local`` fixture.
"""

from ..exceptions import DynamoDBLocalError
from ._aio_contract import AsyncEventStoreContract
from ._contract import EventStoreContract
from ._contract_archive import ArchivableStoreContract
from ._contract_keys import KeyStoreContract
from ._contract_lifecycle import DeletableStoreContract
from ._faults import FaultProxy
from ._lambda_payloads import lambda_payload
from ._local import DynamoDBLocal, configured_or_local, find_dynamodb_local

__all__ = [
    "ArchivableStoreContract",
    "AsyncEventStoreContract",
    "DeletableStoreContract",
    "DynamoDBLocal",
    "DynamoDBLocalError",
    "EventStoreContract",
    "FaultProxy",
    "KeyStoreContract",
    "configured_or_local",
    "find_dynamodb_local",
    "lambda_payload",
]
