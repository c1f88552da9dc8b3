"""Every Python code block in docs/ and README.md runs, against DynamoDB Local, in page order."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from dynamo_es.testing import DynamoDBLocal

pytest_plugins = ["dynamo_es.testing.pytest_plugin"]  # the entry point is off in addopts (see pyproject.toml)


def _set_env(values: dict[str, str]) -> dict[str, str | None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def _docs_dynamodb(dynamodb_local: DynamoDBLocal) -> Iterator[None]:
    """The docs read DYNAMO_ES_* like a deployed service would; here they point at DynamoDB Local."""
    settings = dynamodb_local.settings()
    saved = _set_env(
        {
            "DYNAMO_ES_ENDPOINT_URL": dynamodb_local.endpoint_url,
            "DYNAMO_ES_AWS_ACCESS_KEY_ID": str(settings.aws_access_key_id),
            "DYNAMO_ES_AWS_SECRET_ACCESS_KEY": str(settings.aws_secret_access_key),
            "DYNAMO_ES_STREAMS_POLL_INTERVAL_MS": "100",
        }
    )
    yield
    _restore_env(saved)


def _setup(namespace: dict[str, Any]) -> None:
    """Tables of this page's own, so pages do not see each other's events."""
    page = f"docs-{uuid.uuid4().hex[:10]}"
    namespace["__saved_env__"] = _set_env(
        {
            "DYNAMO_ES_EVENTS_TABLE_NAME": f"{page}-events",
            "DYNAMO_ES_CHECKPOINTS_TABLE_NAME": f"{page}-checkpoints",
            "DYNAMO_ES_SNAPSHOTS_TABLE_NAME": f"{page}-snapshots",
        }
    )


def _teardown(namespace: dict[str, Any]) -> None:
    _restore_env(namespace["__saved_env__"])


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["docs/*.md", "README.md"],
    setup=_setup,
    teardown=_teardown,
    fixtures=["_docs_dynamodb"],
).pytest()
