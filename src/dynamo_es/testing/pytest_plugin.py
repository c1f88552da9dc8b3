"""pytest fixtures for testing aggregates on DynamoDB Local (registered as a pytest11 plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._local import DynamoDBLocal

pytest.register_assert_rewrite("dynamo_es.testing._contract")


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """A DynamoDB Local server, started once per test session and stopped after it.

    Build settings with ``dynamodb_local.settings(events_table_name=...)``.
    """
    with DynamoDBLocal(quick_start=True) as local:
        yield local
