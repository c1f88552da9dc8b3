"""A local endpoint needs no AWS credentials: placeholders are used, and nothing is looked up."""

from __future__ import annotations

import uuid

import attrs
import pytest

from dynamo_es import DynamoDBEventStore, EventStoreSettings, event
from dynamo_es.dynamodb.wire.credentials import PLACEHOLDER_KEYS, credentials_for
from dynamo_es.exceptions import EventStoreError
from dynamo_es.testing import DynamoDBLocal

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without AWS keys: no variables, no shared credentials file."""
    for name in (*AWS_VARIABLES, "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")


@event(name="CredentialsNoted")
@attrs.frozen
class Noted:
    n: int


@pytest.mark.usefixtures("no_aws_credentials")
class TestLocalEndpoints:
    @pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
    def test_a_loopback_endpoint_without_keys_gets_placeholders(self, url: str) -> None:
        """DynamoDB Local accepts any keys, so none need configuring."""
        assert credentials_for(EventStoreSettings(endpoint_url=url)) == PLACEHOLDER_KEYS

    def test_configured_keys_and_aws_endpoints_are_left_alone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Explicit keys win; AWS itself and a configured profile use botocore's own chain."""
        local = EventStoreSettings(endpoint_url="http://127.0.0.1:8000")
        assert credentials_for(attrs.evolve(local, aws_access_key_id="k", aws_secret_access_key="s")) == ("k", "s")
        assert credentials_for(EventStoreSettings()) == (None, None)
        assert credentials_for(EventStoreSettings(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")) == (
            None,
            None,
        )
        monkeypatch.setenv("AWS_PROFILE", "dev")
        assert credentials_for(local) == (None, None)

    @pytest.mark.ddblocal
    def test_a_store_on_dynamodb_local_works_without_any_credentials(self, dynamodb_local: DynamoDBLocal) -> None:
        """Append, load and the table check, with no keys anywhere on the machine."""
        settings = EventStoreSettings(
            endpoint_url=dynamodb_local.endpoint_url, events_table_name=f"nocreds-{uuid.uuid4().hex[:8]}"
        )
        store = DynamoDBEventStore(settings)
        store.append("a", "Note", [Noted(1)], 0).raise_for_failure()
        assert [e.event for e in store.load("a", "Note")] == [Noted(1)]


class TestNoCredentials:
    @pytest.mark.usefixtures("no_aws_credentials")
    def test_no_endpoint_and_no_credentials_says_how_to_use_dynamodb_local(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Reads and writes against AWS without credentials say to set DYNAMO_ES_ENDPOINT_URL for local use."""
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup from a test
        store = DynamoDBEventStore(EventStoreSettings(endpoint_url="https://dynamodb.invalid", region="us-east-1"))
        for attempt in (lambda: store.load("a", "T"), lambda: store.append("a", "T", [Noted(1)], 0)):
            with pytest.raises(
                EventStoreError, match=r"no AWS credentials found\. For DynamoDB Local, set DYNAMO_ES_ENDPOINT_URL"
            ):
                attempt()
