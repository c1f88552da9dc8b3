"""The botocore clients: the lean wire path's settings, and botocore's own attempts."""

from __future__ import annotations

import pytest

from dynamo_es import EventStoreSettings
from dynamo_es.dynamodb.wire.client import LazyClient, client_options, make_client
from dynamo_es.exceptions import ConfigurationError

LOCAL = {"endpoint_url": "http://127.0.0.1:9", "aws_access_key_id": "x", "aws_secret_access_key": "x"}


def test_botocore_attempts_follow_client_max_attempts() -> None:
    """``client_max_attempts`` is botocore's attempts per request in all, the first included (four by default)."""
    default = client_options(EventStoreSettings(**LOCAL))["config"].retries
    assert default == {"mode": "standard", "total_max_attempts": 4}
    client = make_client(EventStoreSettings(**LOCAL, client_max_attempts=1))
    assert client.meta.config.retries["total_max_attempts"] == 1


@pytest.mark.parametrize("attempts", [0, 11])
def test_client_max_attempts_is_bounded(attempts: int) -> None:
    """At least one attempt, and no more than ten (which would hide an outage for minutes)."""
    with pytest.raises(ConfigurationError, match="client_max_attempts"):
        EventStoreSettings(client_max_attempts=attempts)


def test_a_lazy_client_lends_the_clients_operations() -> None:
    """``lazy.describe_stream`` is the client's own (made on first use, once); private names are not lent."""
    lazy = LazyClient(EventStoreSettings(**LOCAL), "dynamodbstreams")
    assert lazy.describe_stream.__self__ is lazy.get()
    with pytest.raises(AttributeError):
        lazy._private  # noqa: B018  # the lookup is the test
