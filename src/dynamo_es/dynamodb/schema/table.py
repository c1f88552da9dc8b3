"""Table provisioning: create a table when asked, wait until it is ACTIVE, check its keys."""

from __future__ import annotations

import threading
import time
from typing import Any, Generic, TypeVar

import attrs
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from pynamodb.attributes import TTLAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from ...exceptions import EndpointUnreachableError, EventStoreError, TableNotFoundError, TableSchemaError
from ...observability.operations import checking_table
from ..flows.errors import BOUNDARY_ERRORS, NO_CREDENTIALS, lacks_credentials

__all__ = ["LazyTable", "ensure_table", "key_schema_of", "model_keys"]

KeySchema = dict[str, tuple[str, str]]
"""``{"HASH": (name, type), "RANGE": (name, type)}``."""

_ACTIVE_TIMEOUT_SECONDS = 300.0

M = TypeVar("M", bound=Model)


def ensure_table(model: type[Model], *, create: bool, keys: KeySchema) -> dict[str, Any]:
    """Make sure ``model``'s table exists with the key schema ``keys``; return its description.

    Creates it when missing and ``create`` is set (billing, stream and indexes as the model's
    ``Meta`` says) and waits until it is ACTIVE. Two processes racing to create it both succeed.

    Raises:
        TableSchemaError: the table exists with another key schema.
        EventStoreError: the table is missing and may not be created, or DynamoDB failed.
    """
    table_name = model.Meta.table_name
    try:
        description = _describe(model)
        if description is None:
            if not create:
                raise TableNotFoundError(table_name)
            _create(model)
            description = _wait_until_active(model)
            _enable_ttl(model)
        elif description.get("TableStatus") != "ACTIVE":
            description = _wait_until_active(model)
    except BOUNDARY_ERRORS as error:
        if _unreachable(error):
            raise EndpointUnreachableError(model.Meta.host or f"AWS region {model.Meta.region}") from error
        action = "create or check" if create else "check"
        reason = NO_CREDENTIALS if lacks_credentials(error) else str(error)
        raise EventStoreError(f"cannot {action} table {table_name!r}: {reason}") from error
    actual = key_schema_of(description)
    if actual != keys:
        raise TableSchemaError(table_name, _describe_keys(keys), _describe_keys(actual))
    return description


def model_keys(model: type[Model]) -> KeySchema:
    """The key schema ``model`` defines: its hash and range key attributes' names and types."""
    keys: KeySchema = {}
    for attribute in model.get_attributes().values():
        if attribute.is_hash_key or attribute.is_range_key:
            keys["HASH" if attribute.is_hash_key else "RANGE"] = (attribute.attr_name, attribute.attr_type)
    return keys


@attrs.define
class LazyTable(Generic[M]):
    """A model whose table is checked (and created if allowed) once, on first use; thread-safe.

    The key schema it checks is the model's own.
    """

    model: type[M]
    create: bool
    keys: KeySchema = attrs.field(init=False)
    _ready: bool = attrs.field(default=False, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.keys = model_keys(self.model)

    def ensure(self) -> dict[str, Any]:
        """Check the table now (creating it if missing and allowed); return its description."""
        with checking_table(self.model.Meta.table_name):
            description = ensure_table(self.model, create=self.create, keys=self.keys)
        self._ready = True
        return description

    @property
    def checked(self) -> bool:
        """Whether the table was checked already (so `ready()` does no I/O)."""
        return self._ready

    def ready(self) -> type[M]:
        """The model, after the table was checked once."""
        if not self._ready:
            with self._lock:
                if not self._ready:
                    self.ensure()
        return self.model


def _unreachable(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) is a failure to connect at all."""
    while error is not None:
        if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
            return True
        error = error.__cause__ or getattr(error, "cause", None)
    return False


def key_schema_of(description: dict[str, Any]) -> KeySchema:
    """``{"HASH": (name, type), "RANGE": (name, type)}`` from a DescribeTable result."""
    types = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}
    return {k["KeyType"]: (k["AttributeName"], types.get(k["AttributeName"], "?")) for k in description["KeySchema"]}


def _describe_keys(keys: KeySchema) -> str:
    return ", ".join(f"{role} {name} ({kind})" for role, (name, kind) in sorted(keys.items()))


def _describe(model: type[Model]) -> dict[str, Any] | None:
    if not model.exists():
        return None
    description: dict[str, Any] = model.describe_table()
    return description


def _create(model: type[Model]) -> None:
    try:
        model.create_table(wait=False, ignore_update_ttl_errors=True)  # TTL once ACTIVE: _enable_ttl
    except PynamoDBException as error:
        if error.cause_response_code != "ResourceInUseException":
            raise
        # Another process created it first: fine, wait for it below.


def _enable_ttl(model: type[Model]) -> None:
    """Turn TTL on for the model's TTL attribute, if it has one; a racing creator may have done it first."""
    names = [a.attr_name for a in model.get_attributes().values() if isinstance(a, TTLAttribute)]
    try:
        for name in names:
            model._get_connection().update_time_to_live(name)
    except PynamoDBException as error:
        if "already enabled" not in str(error.cause or error):
            raise


def _wait_until_active(model: type[Model]) -> dict[str, Any]:
    deadline = time.monotonic() + _ACTIVE_TIMEOUT_SECONDS
    delay = 0.05
    while True:
        description = _describe(model)
        if description is not None and description.get("TableStatus") == "ACTIVE":
            return description
        if time.monotonic() > deadline:
            raise EventStoreError(f"table {model.Meta.table_name!r} did not become ACTIVE in time")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
