"""Table provisioning: create the events table when asked, and check an existing one."""

from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import PynamoDBException

from ..exceptions import EventStoreError, TableSchemaError
from ..settings import EventStoreSettings
from ._model import EventItem

__all__ = ["ensure_table", "key_schema_of"]

_ACTIVE_TIMEOUT_SECONDS = 300.0


def ensure_table(model: type[EventItem], settings: EventStoreSettings) -> dict[str, Any]:
    """Make sure ``model``'s table exists with the settings' key schema; return its description.

    Creates it when missing and ``create_table_if_not_exists`` is set (on-demand or
    provisioned; stream NEW_AND_OLD_IMAGES when enabled) and waits until it is ACTIVE.
    Two processes racing to create it both succeed.

    Raises:
        TableSchemaError: the table exists with another key schema.
        EventStoreError: the table is missing and may not be created, or DynamoDB failed.
    """
    try:
        description = _describe(model)
        if description is None:
            if not settings.create_table_if_not_exists:
                raise EventStoreError(
                    f"table {settings.events_table_name!r} does not exist and create_table_if_not_exists is off"
                )
            _create(model)
            description = _wait_until_active(model)
        elif description.get("TableStatus") != "ACTIVE":
            description = _wait_until_active(model)
    except PynamoDBException as error:
        raise EventStoreError(f"cannot provision table {settings.events_table_name!r}: {error}") from error
    _check_key_schema(description, settings)
    return description


def key_schema_of(description: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{"HASH": (name, type), "RANGE": (name, type)}`` from a DescribeTable result."""
    types = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}
    return {k["KeyType"]: (k["AttributeName"], types.get(k["AttributeName"], "?")) for k in description["KeySchema"]}


def _check_key_schema(description: dict[str, Any], settings: EventStoreSettings) -> None:
    expected = {
        "HASH": (settings.partition_key_attribute, "S"),
        "RANGE": (settings.sort_key_attribute, "N"),
    }
    actual = key_schema_of(description)
    if actual != expected:
        raise TableSchemaError(settings.events_table_name, _describe_keys(expected), _describe_keys(actual))


def _describe_keys(keys: dict[str, tuple[str, str]]) -> str:
    return ", ".join(f"{role} {name} ({kind})" for role, (name, kind) in sorted(keys.items()))


def _describe(model: type[EventItem]) -> dict[str, Any] | None:
    if not model.exists():
        return None
    description: dict[str, Any] = model.describe_table()
    return description


def _create(model: type[EventItem]) -> None:
    try:
        model.create_table(wait=False)
    except PynamoDBException as error:
        if error.cause_response_code != "ResourceInUseException":
            raise
        # Another process created it first: fine, wait for it below.


def _wait_until_active(model: type[EventItem]) -> dict[str, Any]:
    deadline = time.monotonic() + _ACTIVE_TIMEOUT_SECONDS
    delay = 0.05
    while True:
        description = _describe(model)
        if description is not None and description.get("TableStatus") == "ACTIVE":
            return description
        if time.monotonic() > deadline:
            raise EventStoreError(f"table {model._get_connection().table_name!r} did not become ACTIVE in time")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
