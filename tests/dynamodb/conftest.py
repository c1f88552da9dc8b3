"""Helpers to watch and steer the calls a store makes at the botocore boundary."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from botocore.awsrequest import AWSResponse

from dynamo_es import DynamoDBEventStore


@attrs.define
class CallLog:
    """The parameters of every call of one operation that a store sent."""

    calls: list[dict[str, Any]] = attrs.field(factory=list)
    payload_sizes: list[int] = attrs.field(factory=list)

    def record(self, params: dict[str, Any], **_: Any) -> None:
        """A ``before-call`` handler: ``params["body"]`` is the request payload as sent."""
        body = params["body"]
        self.payload_sizes.append(len(body))
        self.calls.append(json.loads(body))


def error_response(code: str, *, reasons: list[str] | None = None) -> tuple[AWSResponse, dict[str, Any]]:
    """A botocore (http, parsed) pair for an error DynamoDB Local never produces by itself."""
    parsed: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"injected {code}"},
        "ResponseMetadata": {},
    }
    if reasons is not None:
        parsed["CancellationReasons"] = [{"Code": reason} for reason in reasons]
    return AWSResponse("http://injected", 400, {}, None), parsed


@pytest.fixture
def watch() -> Iterator[Callable[[DynamoDBEventStore, str], CallLog]]:
    """``watch(store, "TransactWriteItems")`` records that operation's calls until the test ends."""
    registered: list[tuple[Any, str, Callable[..., None]]] = []

    def start(store: DynamoDBEventStore, operation: str) -> CallLog:
        log = CallLog()
        events = store.connection.client.meta.events
        name = f"before-call.dynamodb.{operation}"
        events.register(name, log.record)
        registered.append((events, name, log.record))
        return log

    yield start
    for events, name, handler in registered:
        events.unregister(name, handler)


@pytest.fixture
def inject() -> Iterator[Callable[..., None]]:
    """``inject(store, operation, code, reasons=..., times=n)``: the next n calls fail with ``code``."""
    registered: list[tuple[Any, str, Callable[..., Any]]] = []

    def start(
        store: DynamoDBEventStore,
        operation: str,
        code: str,
        *,
        reasons: list[str] | None = None,
        times: int = 1,
    ) -> None:
        queue = [error_response(code, reasons=reasons) for _ in range(times)]

        def respond(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            return queue.pop(0) if queue else None

        events = store.connection.client.meta.events
        name = f"before-call.dynamodb.{operation}"
        events.register_last(name, respond)  # after watch(), which must still see the call
        registered.append((events, name, respond))

    yield start
    for events, name, handler in registered:
        events.unregister(name, handler)
